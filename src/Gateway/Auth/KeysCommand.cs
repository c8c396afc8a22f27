using System.CommandLine;
using System.Globalization;
using GpuFleet.Gateway.Hosting;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// <c>gateway keys add|list|remove</c>: manages the API keys file. A new key is printed once and only its hash is
/// stored; the file is replaced atomically and readable by its owner only.
/// </summary>
internal static class KeysCommand
{
    /// <summary>The keys file used when <c>--keys</c> is not given, in the current directory.</summary>
    public const string DefaultFileName = "gpufleet-keys.json";

    private const int Ok = 0;
    private const int Failure = 1;

    /// <summary>
    /// The <c>keys</c> command of the gateway's command line (<see cref="GatewayCommandLine"/>): <c>add</c>,
    /// <c>list</c>, <c>remove</c>, and <c>help</c> besides <c>--help</c>. Each returns 0 ok or 1 on any other failure;
    /// usage errors are the parser's (exit 2).
    /// </summary>
    public static Command Create()
    {
        var keys = new Command("keys", "Manage the API keys file: a new key is printed once and only its hash is stored; " +
            "the file is replaced atomically and readable by its owner only.");
        keys.Subcommands.Add(Verb("add", "Create a key; it is printed once, only its hash is stored.", AddAsync, named: true, limited: true));
        keys.Subcommands.Add(Verb("list", "Names, limits and creation times; never hashes.", ListAsync, named: false, limited: false));
        keys.Subcommands.Add(Verb("remove", "Delete a key (gateways drop it within seconds).", RemoveAsync, named: true, limited: false));
        // `keys help` has always printed the usage, as --help does.
        var help = new Command("help", "Show this usage.") { Hidden = true };
        help.SetAction(result => result.RootCommandResult.Command.Parse(["keys", "--help"]).Invoke(new InvocationConfiguration { Output = result.InvocationConfiguration.Output }));
        keys.Subcommands.Add(help);
        return keys;
    }

    /// <summary>Runs <c>gateway keys ARGS</c> (the arguments after <c>keys</c>): 0 ok, 2 usage error, 1 any other failure.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr) =>
        // Under a root of its own, which brings --help and the usage on errors; the gateway's root holds the same command.
        GatewayCommandLine.InvokeAsync(new RootCommand("GpuFleet gateway API keys.") { Create() }, ["keys", .. args], stdout, stderr);

    private static Command Verb(string name, string description, Func<KeyRequest, TextWriter, TextWriter, Task<int>> run, bool named, bool limited)
    {
        var verb = new Command(name, description);
        var file = new Option<string>("--keys")
        {
            HelpName = "FILE",
            Description = "The keys file.",
            DefaultValueFactory = _ => DefaultFileName,
        };
        file.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
            {
                result.AddError("--keys needs one file name.");
            }
        });
        verb.Options.Add(file);
        var keyName = new Argument<string>("name") { Description = "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit." };
        if (named)
        {
            keyName.Validators.Add(result =>
            {
                if (result.GetValueOrDefault<string>() is { } value && !ApiKeysFile.IsValidName(value))
                {
                    result.AddError($"'{value}' is not a valid key name: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.");
                }
            });
            verb.Arguments.Add(keyName);
        }

        var rpm = Limit("--rpm", "Requests per minute; unlimited when left out.");
        var tpm = Limit("--tpm", "Tokens (prompt + completion) per minute; unlimited when left out.");
        if (limited)
        {
            verb.Options.Add(rpm);
            verb.Options.Add(tpm);
        }

        verb.SetAction(async (result, _) =>
        {
            var request = new KeyRequest(
                named ? result.GetValue(keyName) : null,
                limited ? result.GetValue(rpm) : null,
                limited ? result.GetValue(tpm) : null,
                result.GetValue(file) ?? DefaultFileName);
            var stderr = result.InvocationConfiguration.Error ?? Console.Error;
            try
            {
                return await run(request, result.InvocationConfiguration.Output ?? Console.Out, stderr);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await stderr.WriteLineAsync($"keys: cannot update {request.File}: {ex.Message}");
                return Failure;
            }
        });
        return verb;
    }

    private static Option<int?> Limit(string name, string description) => new(name)
    {
        HelpName = "N",
        Description = description,
        // One or more, so that a second one reaches the parser below and is named as such.
        Arity = ArgumentArity.OneOrMore,
        CustomParser = argument =>
        {
            if (argument.Tokens.Count != 1)
            {
                argument.AddError($"{name} is given twice.");
                return null;
            }

            var value = argument.Tokens[0].Value;
            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 1)
            {
                argument.AddError($"{name} must be a whole number of at least 1, not '{value}'; leave it out for no limit.");
                return null;
            }

            return limit;
        },
    };

    private static async Task<int> AddAsync(KeyRequest command, TextWriter stdout, TextWriter stderr)
    {
        var existing = await ReadAsync(command.File, mayBeMissing: true, stderr);
        if (existing is null)
        {
            return Failure;
        }

        if (existing.Entries.Any(e => string.Equals(e.Name, command.Name, StringComparison.OrdinalIgnoreCase)))
        {
            await stderr.WriteLineAsync($"keys: a key named '{command.Name}' already exists in {command.File}; remove it first to replace it.");
            return Failure;
        }

        var key = ApiKeySecrets.Generate();
        var entry = new ApiKeyEntry(command.Name!, ApiKeySecrets.Hash(key), command.Rpm, command.Tpm, TruncateToSeconds(DateTimeOffset.UtcNow));
        new ApiKeysFile([.. existing.Entries, entry]).WriteAtomically(command.File);
        await stdout.WriteLineAsync(key);
        await stderr.WriteLineAsync($"keys: added '{command.Name}' to {command.File}. The key above is not stored anywhere: copy it now, it cannot be shown again.");
        return Ok;
    }

    private static async Task<int> ListAsync(KeyRequest command, TextWriter stdout, TextWriter stderr)
    {
        var file = await ReadAsync(command.File, mayBeMissing: false, stderr);
        if (file is null)
        {
            return Failure;
        }

        var width = Math.Max(4, file.Entries.Select(e => e.Name.Length).DefaultIfEmpty(0).Max());
        await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{"NAME".PadRight(width)}  {"RPM",10}  {"TPM",12}  CREATED"));
        foreach (var entry in file.Entries)
        {
            var rpm = entry.RequestsPerMinute?.ToString(CultureInfo.InvariantCulture) ?? "unlimited";
            var tpm = entry.TokensPerMinute?.ToString(CultureInfo.InvariantCulture) ?? "unlimited";
            var created = entry.Created?.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) ?? "-";
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{entry.Name.PadRight(width)}  {rpm,10}  {tpm,12}  {created}"));
        }

        return Ok;
    }

    private static async Task<int> RemoveAsync(KeyRequest command, TextWriter stdout, TextWriter stderr)
    {
        var file = await ReadAsync(command.File, mayBeMissing: false, stderr);
        if (file is null)
        {
            return Failure;
        }

        var remaining = file.Entries.Where(e => !string.Equals(e.Name, command.Name, StringComparison.OrdinalIgnoreCase)).ToList();
        if (remaining.Count == file.Entries.Count)
        {
            await stderr.WriteLineAsync($"keys: no key named '{command.Name}' in {command.File}.");
            return Failure;
        }

        new ApiKeysFile(remaining).WriteAtomically(command.File);
        await stderr.WriteLineAsync($"keys: removed '{command.Name}' from {command.File}; running gateways refuse it within seconds.");
        return Ok;
    }

    // The file's keys; an empty set for a missing file when allowed; null (reported) when it cannot be used.
    private static async Task<ApiKeysFile?> ReadAsync(string path, bool mayBeMissing, TextWriter stderr)
    {
        byte[] content;
        try
        {
            content = await File.ReadAllBytesAsync(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            if (mayBeMissing && ex is FileNotFoundException)
            {
                return new ApiKeysFile([]);
            }

            await stderr.WriteLineAsync($"keys: {path} does not exist{(mayBeMissing ? " (its directory is missing)" : "")}.");
            return null;
        }

        if (!ApiKeysFile.TryParse(content, out var file, out var errors))
        {
            await stderr.WriteLineAsync($"keys: {path} is invalid; fix it by hand first:");
            foreach (var error in errors)
            {
                await stderr.WriteLineAsync($"  {error}");
            }

            return null;
        }

        return file;
    }

    private static DateTimeOffset TruncateToSeconds(DateTimeOffset time) => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerSecond), time.Offset);

    private readonly record struct KeyRequest(string? Name, int? Rpm, int? Tpm, string File);
}
