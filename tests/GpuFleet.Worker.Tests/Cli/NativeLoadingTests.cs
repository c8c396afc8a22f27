using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests.Cli;

/// <summary>The worker, run as a real process, reports its backend or fails clearly when the libraries are missing.</summary>
[Collection(LlamaCollection.Name)]
public sealed class NativeLoadingTests
{
    [Fact]
    public async Task Info_reports_the_cpu_backend_and_device()
    {
        var (exit, output, error) = await WorkerProgram.RunAsync("info");

        Assert.True(exit == 0, error);
        Assert.Contains("backends: CPU", output, StringComparison.Ordinal);
        Assert.Contains("device: CPU (CPU)", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_native_folder_fails_with_a_clear_message()
    {
        var (exit, _, error) = await WorkerProgram.RunAsync("info", "--native-dir", "/nonexistent/llama");

        Assert.Equal(1, exit);
        Assert.Contains("does not exist", error, StringComparison.Ordinal);
        Assert.Contains("fetch-natives.sh", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Folder_without_the_libraries_fails_with_a_clear_message()
    {
        var empty = Directory.CreateTempSubdirectory("gpufleet-empty-natives-").FullName;
        try
        {
            var (exit, _, error) = await WorkerProgram.RunAsync("info", "--native-dir", empty);

            Assert.Equal(1, exit);
            Assert.Contains("native libraries are missing", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public async Task Libraries_of_another_llama_cpp_release_are_refused_before_loading()
    {
        var folder = Directory.CreateTempSubdirectory("gpufleet-other-release-").FullName;
        try
        {
            foreach (var library in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "llama-native"), "*.so"))
            {
                File.CreateSymbolicLink(Path.Combine(folder, Path.GetFileName(library)), library);
            }

            File.WriteAllText(Path.Combine(folder, "_nlcBuildMetadata.json"),
                """{"buildOptions":{"llamaCpp":{"repo":"ggml-org/llama.cpp","release":"v0.4.0"}}}""");
            var (exit, _, error) = await WorkerProgram.RunAsync("info", "--native-dir", folder);

            Assert.Equal(1, exit);
            Assert.Contains("llama.cpp v0.4.0", error, StringComparison.Ordinal);
            Assert.Contains("mirror v0.5.0", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
