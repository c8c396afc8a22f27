using System.Collections.Frozen;
using System.Security.Cryptography;
using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// The gateway's API keys, from <see cref="GatewayOptions.KeysFile"/>. Loaded when the host starts (a missing or
/// invalid file stops the start with every problem named) and polled every <see cref="ReloadInterval"/> after
/// that, so an edited file or an updated Kubernetes Secret (a symlink swap, which file-change events can miss)
/// takes effect within seconds. A file that turns bad keeps the last good keys in force and is logged once per
/// bad version. With no file configured, <see cref="Enabled"/> is false and the gateway runs open, with a warning.
/// </summary>
internal sealed class ApiKeyStore : IHostedService, IDisposable
{
    /// <summary>How often the file is read again; it is small, and comparing contents catches every kind of update.</summary>
    public static readonly TimeSpan ReloadInterval = TimeSpan.FromSeconds(2);

    private readonly string? _path;
    private readonly ILogger<ApiKeyStore> _logger;
    private readonly TimeProvider _time;
    private readonly Lock _reloadLock = new();
    private volatile FrozenDictionary<string, ApiKeyIdentity> _byHash = FrozenDictionary<string, ApiKeyIdentity>.Empty;
    private byte[] _lastSeen = [];
    private ITimer? _timer;

    public ApiKeyStore(IOptions<GatewayOptions> options, ILogger<ApiKeyStore> logger, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _path = string.IsNullOrWhiteSpace(options.Value.KeysFile) ? null : Path.GetFullPath(options.Value.KeysFile);
        _logger = logger;
        _time = time;
    }

    /// <summary>True when a keys file is configured: every request but health and metrics needs a key.</summary>
    public bool Enabled => _path is not null;

    /// <summary>The keys file's full path; null when none is configured.</summary>
    public string? FilePath => _path;

    /// <summary>How many keys are in force.</summary>
    public int Count => _byHash.Count;

    /// <summary>
    /// The identity of a presented key, or false when it is unknown (or removed). The key is hashed and looked up by
    /// its hash: a lookup's timing can only depend on SHA-256 outputs, which an attacker cannot steer toward a
    /// stored hash, so no constant-time comparison is needed.
    /// </summary>
    public bool TryAuthenticate(ReadOnlySpan<char> presentedKey, out ApiKeyIdentity? identity)
    {
        identity = null;
        return !presentedKey.IsEmpty
            && ApiKeySecrets.TryHash(presentedKey, out var hash)
            && _byHash.TryGetValue(hash, out identity);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_path is null)
        {
            AuthLog.GatewayOpen(_logger);
            return Task.CompletedTask;
        }

        if (!TryRead(_path, out var content, out var problem))
        {
            throw new InvalidOperationException($"Gateway:KeysFile: {problem}");
        }

        if (!ApiKeysFile.TryParse(content, out var file, out var errors))
        {
            throw new InvalidOperationException($"Gateway:KeysFile: the API keys file {_path} is invalid: {string.Join(" ", errors)}");
        }

        lock (_reloadLock)
        {
            _lastSeen = SHA256.HashData(content);
            _byHash = Index(file!);
        }

        AuthLog.KeysLoaded(_logger, file!.Entries.Count, _path);
        _timer = _time.CreateTimer(_ => Reload(), null, ReloadInterval, ReloadInterval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _timer?.Dispose();

    // On the timer: a tick that finds the previous one still reading skips, and nothing may escape (it would end the process).
    private void Reload()
    {
        if (!_reloadLock.TryEnter())
        {
            return;
        }

        try
        {
            var path = _path!;
            byte[] content;
            if (!TryRead(path, out content, out var problem))
            {
                // Recorded like a version of the file, so a lasting outage is logged once.
                content = System.Text.Encoding.UTF8.GetBytes("\0unreadable: " + problem);
            }

            var seen = SHA256.HashData(content);
            if (seen.AsSpan().SequenceEqual(_lastSeen))
            {
                return;
            }

            _lastSeen = seen;
            if (problem is not null)
            {
                AuthLog.KeysFileInvalid(_logger, path, _byHash.Count, problem);
                return;
            }

            if (!ApiKeysFile.TryParse(content, out var file, out var errors))
            {
                AuthLog.KeysFileInvalid(_logger, path, _byHash.Count, string.Join(" ", errors));
                return;
            }

            var previous = _byHash;
            var next = Index(file!);
            _byHash = next;
            var oldByName = previous.Values.ToDictionary(k => k.Name, StringComparer.OrdinalIgnoreCase);
            var oldHashByName = previous.ToDictionary(p => p.Value.Name, p => p.Key, StringComparer.OrdinalIgnoreCase);
            int added = 0, changed = 0;
            foreach (var (hash, identity) in next)
            {
                if (!oldByName.TryGetValue(identity.Name, out var old))
                {
                    added++;
                }
                else if (old != identity || oldHashByName[identity.Name] != hash)
                {
                    changed++;
                }
            }

            var removed = oldByName.Count - (next.Count - added);
            AuthLog.KeysReloaded(_logger, path, next.Count, added, removed, changed);
        }
        finally
        {
            _reloadLock.Exit();
        }
    }

    private static FrozenDictionary<string, ApiKeyIdentity> Index(ApiKeysFile file) =>
        file.Entries.ToFrozenDictionary(e => e.Sha256, e => e.ToIdentity(), StringComparer.Ordinal);

    private static bool TryRead(string path, out byte[] content, out string? problem)
    {
        content = [];
        problem = null;
        try
        {
            content = File.ReadAllBytes(path);
            return true;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            problem = $"the API keys file {path} does not exist (create it with: keys add NAME --keys {path}).";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = $"the API keys file {path} cannot be read: {ex.Message}";
        }

        return false;
    }
}
