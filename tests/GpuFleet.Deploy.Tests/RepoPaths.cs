namespace GpuFleet.Deploy.Tests;

/// <summary>Where the repository's deployment files are, found from the test's output folder.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Deploy => Path.Combine(Root, "deploy");

    public static string Kubernetes => Path.Combine(Root, "deploy", "k8s");

    public static string Compose => Path.Combine(Root, "deploy", "compose");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "GpuFleet.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No GpuFleet.sln above {AppContext.BaseDirectory}.");
    }
}
