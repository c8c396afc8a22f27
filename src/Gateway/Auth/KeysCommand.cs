using System.Globalization;

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
    private const int UsageError = 2;

    private const string Usage = """
        Usage:
          keys add <name> [--rpm N] [--tpm N] [--keys FILE]   create a key; it is printed once, only its hash is stored
          keys list [--keys FILE]                             names and limits
          keys remove <name> [--keys FILE]                    delete a key (gateways drop it within seconds)
        FILE defaults to ./gpufleet-keys.json; limits are per minute and unlimited when left out.
        """;

    /// <summary>Runs the command (the arguments after <c>keys</c>); 0 ok, 2 usage error, 1 any other failure.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        if (args is ["help" or "--help" or "-h"])
        {
            await stdout.WriteLineAsync(Usage);
            return Ok;
        }

        if (!TryParse(args, out var command, out var problem))
        {
            await stderr.WriteLineAsync($"keys: {problem}");
            await stderr.WriteLineAsync(Usage);
            return UsageError;
        }

        try
        {
            return command.Verb switch
            {
                "add" => await AddAsync(command, stdout, stderr),
                "list" => await ListAsync(command, stdout, stderr),
                _ => await RemoveAsync(command, stderr),
            };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"keys: cannot update {command.File}: {ex.Message}");
            return Failure;
        }
    }

    private static async Task<int> AddAsync(Command command, TextWriter stdout, TextWriter stderr)
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

    private static async Task<int> ListAsync(Command command, TextWriter stdout, TextWriter stderr)
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

    private static async Task<int> RemoveAsync(Command command, TextWriter stderr)
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

    private static bool TryParse(string[] args, out Command command, out string problem)
    {
        command = default;
        problem = "";
        if (args.Length == 0)
        {
            problem = "say what to do: add, list or remove.";
            return false;
        }

        var verb = args[0];
        if (verb is not ("add" or "list" or "remove"))
        {
            problem = $"unknown command '{verb}'.";
            return false;
        }

        string? file = null;
        int? rpm = null;
        int? tpm = null;
        var positional = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(arg);
                continue;
            }

            if (arg is not ("--keys" or "--rpm" or "--tpm"))
            {
                problem = $"unknown option '{arg}'.";
                return false;
            }

            if (i + 1 >= args.Length)
            {
                problem = $"{arg} needs a value.";
                return false;
            }

            var value = args[++i];
            if (arg == "--keys")
            {
                if (file is not null || string.IsNullOrWhiteSpace(value))
                {
                    problem = "--keys needs one file name.";
                    return false;
                }

                file = value;
                continue;
            }

            if (verb != "add")
            {
                problem = $"{arg} applies to 'keys add' only.";
                return false;
            }

            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 1)
            {
                problem = $"{arg} must be a whole number of at least 1, not '{value}'; leave it out for no limit.";
                return false;
            }

            if ((arg == "--rpm" ? rpm : tpm) is not null)
            {
                problem = $"{arg} is given twice.";
                return false;
            }

            if (arg == "--rpm")
            {
                rpm = limit;
            }
            else
            {
                tpm = limit;
            }
        }

        var wanted = verb == "list" ? 0 : 1;
        if (positional.Count != wanted)
        {
            problem = verb == "list" ? $"'keys list' takes no name, but got '{positional[0]}'." : $"'keys {verb}' needs exactly one key name.";
            return false;
        }

        var name = wanted == 1 ? positional[0] : null;
        if (name is not null && !ApiKeysFile.IsValidName(name))
        {
            problem = $"'{name}' is not a valid key name: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.";
            return false;
        }

        command = new Command(verb, name, rpm, tpm, file ?? DefaultFileName);
        return true;
    }

    private readonly record struct Command(string Verb, string? Name, int? Rpm, int? Tpm, string File);
}
