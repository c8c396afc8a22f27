using System.Security.Cryptography;
using System.Text;

namespace GpuFleet.Contracts.Redis;

/// <summary>A Lua script and its SHA1, so it is sent by hash (EVALSHA) and its text only when the server lacks it.</summary>
public sealed class RedisScript
{
    public RedisScript(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        Text = text;
        // SHA1 here is Redis's script-cache key, not a security measure; the server computes the same hash.
#pragma warning disable CA5350
        Sha1 = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(text)));
#pragma warning restore CA5350
    }

    public string Text { get; }

    /// <summary>Lower-case hex, as SCRIPT LOAD returns it.</summary>
    public string Sha1 { get; }
}
