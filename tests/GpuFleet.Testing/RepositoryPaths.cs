namespace GpuFleet.Testing;

/// <summary>Files of the repository the tests read (dashboards, rules): found from the test binaries upwards.</summary>
public static class RepositoryPaths
{
    /// <summary>The folder holding GpuFleet.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A path under the repository root, from its parts.</summary>
    public static string Of(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "GpuFleet.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No GpuFleet.sln above {AppContext.BaseDirectory}.");
    }
}
