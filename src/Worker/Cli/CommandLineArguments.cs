namespace GpuFleet.Worker.Cli;

/// <summary>A small parser for <c>command positional... --name value --flag</c> command lines.</summary>
internal sealed class CommandLineArguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);

    public CommandLineArguments(IReadOnlyList<string> args, IReadOnlySet<string> flags)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                Positionals.Add(arg);
                continue;
            }

            var name = arg[2..];
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                _options[name[..eq]] = name[(eq + 1)..];
            }
            else if (flags.Contains(name))
            {
                _options[name] = null;
            }
            else if (i + 1 < args.Count)
            {
                _options[name] = args[++i];
            }
            else
            {
                throw new CommandLineException($"Option --{name} needs a value.");
            }
        }
    }

    public List<string> Positionals { get; } = [];

    public bool Has(string name) => _options.ContainsKey(name);

    public string? Get(string name) => _options.TryGetValue(name, out var value) ? value : null;

    public int GetInt(string name, int fallback)
    {
        var value = Get(name);
        if (value is null)
        {
            return fallback;
        }

        return int.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new CommandLineException($"--{name} must be an integer, not '{value}'.");
    }

    public T GetEnum<T>(string name, T fallback)
        where T : struct, Enum
    {
        var value = Get(name);
        if (value is null)
        {
            return fallback;
        }

        return Enum.TryParse<T>(value.Replace("-", "_", StringComparison.Ordinal), ignoreCase: true, out var parsed) && Enum.IsDefined(parsed)
            ? parsed
            : throw new CommandLineException(
                $"--{name} must be one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}, not '{value}'.");
    }

    public void RejectUnknown(params string[] known)
    {
        var unknown = _options.Keys.Where(k => !known.Contains(k, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
        {
            throw new CommandLineException($"Unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}.");
        }
    }
}

/// <summary>A command line that cannot be run as given; the message says why.</summary>
internal sealed class CommandLineException : Exception
{
    public CommandLineException(string message)
        : base(message)
    {
    }

    public CommandLineException()
    {
    }

    public CommandLineException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
