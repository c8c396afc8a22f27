using System.Text;
using System.Text.Json;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace GpuFleet.Gateway.Tests.Auth;

/// <summary>The <c>keys</c> command on real files, and the keys file as the gateway loads it.</summary>
public sealed class KeysCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-keys-").FullName;

    private string KeysFile => Path.Combine(_directory, "keys.json");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Add_list_remove_round_trip_and_the_printed_key_authenticates()
    {
        var alice = await RunAsync(0, "add", "alice", "--rpm", "60", "--tpm", "100000", "--keys", KeysFile);
        Assert.Matches("^gf-[A-Za-z0-9_-]{43}$", alice.Stdout.Trim());
        Assert.Contains("not stored", alice.Stderr, StringComparison.Ordinal);
        var bob = await RunAsync(0, "add", "bob", "--keys", KeysFile);
        var aliceKey = alice.Stdout.Trim();
        var bobKey = bob.Stdout.Trim();
        Assert.NotEqual(aliceKey, bobKey);

        // Hashes only: neither the key nor its random part is anywhere in the file.
        var text = await File.ReadAllTextAsync(KeysFile);
        Assert.DoesNotContain(aliceKey, text, StringComparison.Ordinal);
        Assert.DoesNotContain(aliceKey["gf-".Length..], text, StringComparison.Ordinal);
        Assert.DoesNotContain(bobKey["gf-".Length..], text, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(text))
        {
            var first = json.RootElement.GetProperty("keys")[0];
            Assert.Equal("alice", first.GetProperty("name").GetString());
            Assert.Equal(ApiKeySecrets.Hash(aliceKey), first.GetProperty("sha256").GetString());
            Assert.Equal(60, first.GetProperty("rpm").GetInt32());
            Assert.Equal(100000, first.GetProperty("tpm").GetInt32());
            Assert.True(first.TryGetProperty("created", out _));
            Assert.False(json.RootElement.GetProperty("keys")[1].TryGetProperty("rpm", out _));
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeysFile));
        }

        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));

        var list = await RunAsync(0, "list", "--keys", KeysFile);
        var lines = list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^alice\s+60\s+100000\s+\d{4}-", lines[1]);
        Assert.Matches(@"^bob\s+unlimited\s+unlimited\s", lines[2]);
        Assert.DoesNotContain(ApiKeySecrets.Hash(aliceKey), list.Stdout, StringComparison.Ordinal);

        using (var store = await StartedStoreAsync())
        {
            Assert.Equal(2, store.Count);
            Assert.True(store.TryAuthenticate(aliceKey, out var identity));
            Assert.Equal(new ApiKeyIdentity("alice", 60, 100000), identity);
            Assert.True(store.TryAuthenticate(bobKey, out identity));
            Assert.Equal(new ApiKeyIdentity("bob", null, null), identity);
            Assert.False(store.TryAuthenticate(aliceKey + "x", out _));
            Assert.False(store.TryAuthenticate(ApiKeySecrets.Hash(aliceKey), out _));
        }

        await RunAsync(0, "remove", "alice", "--keys", KeysFile);
        await RunAsync(1, "remove", "alice", "--keys", KeysFile);
        using (var store = await StartedStoreAsync())
        {
            Assert.False(store.TryAuthenticate(aliceKey, out _));
            Assert.True(store.TryAuthenticate(bobKey, out _));
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeysFile));
        }
    }

    [Fact]
    public async Task A_duplicate_name_is_refused_and_prints_no_key()
    {
        await RunAsync(0, "add", "alice", "--keys", KeysFile);
        var before = await File.ReadAllBytesAsync(KeysFile);
        var again = await RunAsync(1, "add", "Alice", "--rpm", "5", "--keys", KeysFile);
        Assert.Equal("", again.Stdout);
        Assert.Contains("already exists", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(KeysFile));
    }

    [Theory]
    [InlineData]
    [InlineData("frobnicate")]
    [InlineData("add")]
    [InlineData("add", "a", "b")]
    [InlineData("add", "bad name")]
    [InlineData("add", "bad:name")]
    [InlineData("add", "alice", "--rpm")]
    [InlineData("add", "alice", "--rpm", "many")]
    [InlineData("add", "alice", "--rpm", "0")]
    [InlineData("add", "alice", "--tpm", "-5")]
    [InlineData("add", "alice", "--rpm", "1", "--rpm", "2")]
    [InlineData("add", "alice", "--color", "red")]
    [InlineData("list", "extra")]
    [InlineData("list", "--rpm", "5")]
    [InlineData("remove")]
    public async Task Bad_arguments_exit_2_with_usage_and_touch_nothing(params string[] args)
    {
        var result = await RunAsync(2, [.. args, "--keys", KeysFile]);
        Assert.Equal("", result.Stdout);
        Assert.Contains("Usage:", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(KeysFile));
    }

    [Fact]
    public async Task List_or_remove_on_a_missing_file_fail_with_1()
    {
        Assert.Contains("does not exist", (await RunAsync(1, "list", "--keys", KeysFile)).Stderr, StringComparison.Ordinal);
        await RunAsync(1, "remove", "alice", "--keys", KeysFile);
    }

    [Fact]
    public async Task Invalid_files_name_every_problem_at_start_and_in_the_command()
    {
        var hash = new string('a', 64);
        await File.WriteAllTextAsync(KeysFile, $$"""
            {"keys":[
              {"name":"alice","sha256":"{{hash}}","rpm":60},
              {"name":"ALICE","sha256":"{{new string('b', 64)}}"},
              {"name":"carol","sha256":"{{hash}}"},
              {"name":"dave","sha256":"not-hex","rmp":5},
              {"name":"erin","sha256":"{{new string('c', 64)}}","tpm":0},
              {"sha256":"{{new string('d', 64)}}"}
            ]}
            """);
        var store = new ApiKeyStore(Options.Create(new GatewayOptions { KeysFile = KeysFile }), NullLogger<ApiKeyStore>.Instance, TimeProvider.System);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.StartAsync(CancellationToken.None));
        foreach (var expected in new[]
                 {
                     "Gateway:KeysFile", KeysFile, "keys[1]: the name 'ALICE' is already used by keys[0]", "keys[2] ('carol'): the same sha256 as keys[0]",
                     "keys[3] ('dave'): \"sha256\" must be 64 hexadecimal digits", "keys[3] ('dave'): unknown property \"rmp\"",
                     "keys[4] ('erin'): \"tpm\" must be a whole number", "keys[5]: \"name\" is missing",
                 })
        {
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        }

        var add = await RunAsync(1, "add", "frank", "--keys", KeysFile);
        Assert.Contains("unknown property \"rmp\"", add.Stderr, StringComparison.Ordinal);

        await File.WriteAllTextAsync(KeysFile, "{\"keys\":[");
        error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.StartAsync(CancellationToken.None));
        Assert.Contains("not valid JSON", error.Message, StringComparison.Ordinal);

        File.Delete(KeysFile);
        error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.StartAsync(CancellationToken.None));
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    private async Task<ApiKeyStore> StartedStoreAsync()
    {
        var store = new ApiKeyStore(Options.Create(new GatewayOptions { KeysFile = KeysFile }), NullLogger<ApiKeyStore>.Instance, TimeProvider.System);
        await store.StartAsync(CancellationToken.None);
        return store;
    }

    private static async Task<(string Stdout, string Stderr)> RunAsync(int expectedExit, params string[] args)
    {
        using var stdout = new StringWriter(new StringBuilder(), System.Globalization.CultureInfo.InvariantCulture);
        using var stderr = new StringWriter(new StringBuilder(), System.Globalization.CultureInfo.InvariantCulture);
        var exit = await KeysCommand.RunAsync(args, stdout, stderr);
        Assert.True(expectedExit == exit, $"keys {string.Join(' ', args)} exited {exit}, not {expectedExit}: {stderr}");
        return (stdout.ToString(), stderr.ToString());
    }
}
