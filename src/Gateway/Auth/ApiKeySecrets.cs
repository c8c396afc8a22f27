using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// The shape of API keys and how they are stored: <c>gf-</c> + base64url of 32 random bytes, kept only as the
/// SHA-256 of their text. A fast unsalted hash is the right storage for 256-bit random secrets (as for GitHub
/// tokens): nothing is guessable to brute-force, and lookup by hash needs no per-key salt.
/// </summary>
internal static class ApiKeySecrets
{
    public const string Prefix = "gf-";

    // Longer than any key we issue (46 characters) with room for other generators; anything longer is refused
    // before hashing, so a huge header costs nothing.
    internal const int MaxKeyLength = 256;

    /// <summary>A new key from the system's cryptographic random source.</summary>
    public static string Generate() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>The SHA-256 of the key's UTF-8 text, lower-case hex: what the keys file holds.</summary>
    public static string Hash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }

    /// <summary>Like <see cref="Hash(string)"/> for a presented key, allocating only the hex text; false when it is too long.</summary>
    internal static bool TryHash(ReadOnlySpan<char> key, out string hash)
    {
        hash = "";
        if (key.Length > MaxKeyLength)
        {
            return false;
        }

        Span<byte> utf8 = stackalloc byte[MaxKeyLength * 3];
        var length = Encoding.UTF8.GetBytes(key, utf8);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..length], digest);
        hash = Convert.ToHexStringLower(digest);
        return true;
    }
}
