using System.Globalization;
using System.Text.Json;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// The API keys file: <c>{"keys":[{"name":"alice","sha256":"&lt;hex&gt;","rpm":60,"tpm":100000,"created":"2026-01-01T00:00:00Z"}]}</c>.
/// It holds hashes only (see <see cref="ApiKeySecrets"/>); <c>rpm</c>, <c>tpm</c> and <c>created</c> are optional
/// (no limit = unlimited). Parsing is strict and reports every problem at once: an unknown property such as a
/// misspelt <c>"rmp"</c> would otherwise silently mean "unlimited".
/// </summary>
internal sealed class ApiKeysFile
{
    private const string KeysProperty = "keys";
    private const string NameProperty = "name";
    private const string Sha256Property = "sha256";
    private const string RpmProperty = "rpm";
    private const string TpmProperty = "tpm";
    private const string CreatedProperty = "created";
    private const int MaxNameLength = 64;

    public ApiKeysFile(IReadOnlyList<ApiKeyEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Entries = entries;
    }

    public IReadOnlyList<ApiKeyEntry> Entries { get; }

    /// <summary>
    /// 1 to 64 of letters, digits, <c>.</c>, <c>_</c>, <c>@</c> and <c>-</c>, starting with a letter or digit: safe in
    /// logs, headers and Redis key names (no <c>:</c> or braces, which structure those names).
    /// </summary>
    public static bool IsValidName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || !char.IsAsciiLetterOrDigit(name[0]))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '@' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Parses the file's UTF-8 JSON; on failure every problem, each naming the entry it is about.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8Json, out ApiKeysFile? file, out IReadOnlyList<string> errors)
    {
        file = null;
        var problems = new List<string>();
        errors = problems;
        JsonDocument document;
        try
        {
            // The file is small; the copy lets JsonDocument own its bytes (it also refuses anything after the object).
            document = JsonDocument.Parse(utf8Json.ToArray());
        }
        catch (JsonException ex)
        {
            problems.Add($"not valid JSON: {ex.Message}");
            return false;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(KeysProperty, out var keys) || keys.ValueKind != JsonValueKind.Array)
            {
                problems.Add("the top level must be a JSON object with a \"keys\" array, e.g. {\"keys\":[{\"name\":\"alice\",\"sha256\":\"...\"}]}.");
                return false;
            }

            foreach (var property in root.EnumerateObject())
            {
                if (property.Name != KeysProperty)
                {
                    problems.Add($"unknown top-level property \"{property.Name}\" (expected only \"keys\").");
                }
            }

            var entries = new List<ApiKeyEntry>();
            var names = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            var hashes = new Dictionary<string, int>(StringComparer.Ordinal);
            var index = 0;
            foreach (var element in keys.EnumerateArray())
            {
                if (ParseEntry(element, index, problems) is { } entry)
                {
                    if (names.TryGetValue(entry.Name, out var first))
                    {
                        problems.Add($"keys[{index}]: the name '{entry.Name}' is already used by keys[{first}] (names are unique, ignoring case).");
                    }
                    else
                    {
                        names.Add(entry.Name, index);
                    }

                    // The same secret under two names would make the request's identity ambiguous.
                    if (hashes.TryGetValue(entry.Sha256, out var same))
                    {
                        problems.Add($"keys[{index}] ('{entry.Name}'): the same sha256 as keys[{same}]; every key needs its own secret.");
                    }
                    else
                    {
                        hashes.Add(entry.Sha256, index);
                    }

                    entries.Add(entry);
                }

                index++;
            }

            if (problems.Count > 0)
            {
                return false;
            }

            file = new ApiKeysFile(entries);
            return true;
        }
    }

    /// <summary>The file's JSON (indented, UTF-8, ending in a newline).</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray(KeysProperty);
            foreach (var entry in Entries)
            {
                writer.WriteStartObject();
                writer.WriteString(NameProperty, entry.Name);
                writer.WriteString(Sha256Property, entry.Sha256);
                if (entry.RequestsPerMinute is { } rpm)
                {
                    writer.WriteNumber(RpmProperty, rpm);
                }

                if (entry.TokensPerMinute is { } tpm)
                {
                    writer.WriteNumber(TpmProperty, tpm);
                }

                if (entry.Created is { } created)
                {
                    writer.WriteString(CreatedProperty, created.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>
    /// Replaces <paramref name="path"/> all at once: the JSON goes to a temporary file beside it (readable and
    /// writable by the owner only), is flushed to disk and renamed over the old file, so a reader (the gateway
    /// polling it) sees the old file or the new one, never half of one.
    /// </summary>
    public void WriteAtomically(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(ToJson());
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    private static ApiKeyEntry? ParseEntry(JsonElement element, int index, List<string> problems)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"keys[{index}] must be an object with \"name\" and \"sha256\", not {element.ValueKind}.");
            return null;
        }

        var before = problems.Count;
        string? name = null;
        if (element.TryGetProperty(NameProperty, out var nameValue) && nameValue.ValueKind == JsonValueKind.String)
        {
            name = nameValue.GetString();
        }

        // Later messages name the entry by its name once it is usable.
        var label = IsValidName(name) ? $"keys[{index}] ('{name}')" : $"keys[{index}]";
        if (name is null)
        {
            problems.Add($"{label}: \"name\" is missing or not a string.");
        }
        else if (!IsValidName(name))
        {
            problems.Add($"{label}: the name '{Truncate(name)}' is not valid: use 1 to {MaxNameLength} letters, digits, '.', '_', '@' or '-', starting with a letter or digit.");
        }

        string? sha256 = null;
        if (!element.TryGetProperty(Sha256Property, out var hashValue) || hashValue.ValueKind != JsonValueKind.String)
        {
            problems.Add($"{label}: \"sha256\" is missing or not a string.");
        }
        else if (hashValue.GetString() is { Length: 64 } hex && hex.All(char.IsAsciiHexDigit))
        {
            sha256 = hex.ToLowerInvariant();
        }
        else
        {
            problems.Add($"{label}: \"sha256\" must be 64 hexadecimal digits (the SHA-256 of the key; 'keys add' writes it).");
        }

        var rpm = ParseLimit(element, RpmProperty, label, problems);
        var tpm = ParseLimit(element, TpmProperty, label, problems);
        DateTimeOffset? created = null;
        if (element.TryGetProperty(CreatedProperty, out var createdValue) && createdValue.ValueKind != JsonValueKind.Null)
        {
            if (createdValue.ValueKind == JsonValueKind.String
                && DateTimeOffset.TryParse(createdValue.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            {
                created = parsed;
            }
            else
            {
                problems.Add($"{label}: \"created\" must be a date and time such as \"2026-01-31T12:00:00Z\".");
            }
        }

        foreach (var property in element.EnumerateObject())
        {
            if (property.Name is not (NameProperty or Sha256Property or RpmProperty or TpmProperty or CreatedProperty))
            {
                problems.Add($"{label}: unknown property \"{Truncate(property.Name)}\" (expected name, sha256, rpm, tpm, created).");
            }
        }

        return problems.Count == before ? new ApiKeyEntry(name!, sha256!, rpm, tpm, created) : null;
    }

    private static int? ParseLimit(JsonElement element, string property, string label, List<string> problems)
    {
        if (!element.TryGetProperty(property, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var limit) && limit > 0)
        {
            return limit;
        }

        problems.Add($"{label}: \"{property}\" must be a whole number from 1 to {int.MaxValue}, not {Truncate(value.GetRawText())}; leave it out for no limit.");
        return null;
    }

    private static string Truncate(string text) => text.Length <= 80 ? text : string.Concat(text.AsSpan(0, 80), "...");
}
