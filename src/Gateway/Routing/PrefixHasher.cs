using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// Cuts a canonical prompt into fixed-size blocks and hashes them as a chain with a keyed hash, per model:
/// block i's hash is HMAC-SHA256(modelKey, hash(i-1) || block i), truncated to 64 bits. Chaining makes a block's
/// hash stand for the whole prefix up to it; the key (<c>Gateway:Routing:AffinityKey</c>, shared by the replicas)
/// makes prefix contents unguessable from what is stored in Redis.
/// </summary>
internal sealed class PrefixHasher
{
    private readonly byte[] _secret;
    private readonly Dictionary<string, byte[]> _modelKeys = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public PrefixHasher(byte[] secret, int blockBytes)
    {
        ArgumentNullException.ThrowIfNull(secret);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockBytes, 64);
        _secret = secret;
        BlockBytes = blockBytes;
    }

    public int BlockBytes { get; }

    /// <summary>The chained hashes of every full block of <paramref name="canonical"/> (at most <paramref name="maxBlocks"/>).</summary>
    public ulong[] Hash(string model, ReadOnlySpan<byte> canonical, int maxBlocks)
    {
        var count = Math.Min(canonical.Length / BlockBytes, maxBlocks);
        var hashes = new ulong[count];
        if (count == 0)
        {
            return hashes;
        }

        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, ModelKey(model));
        Span<byte> previous = stackalloc byte[8];
        Span<byte> digest = stackalloc byte[32];
        for (var i = 0; i < count; i++)
        {
            hmac.AppendData(previous);
            hmac.AppendData(canonical.Slice(i * BlockBytes, BlockBytes));
            hmac.GetHashAndReset(digest);
            digest[..8].CopyTo(previous);
            hashes[i] = BinaryPrimitives.ReadUInt64LittleEndian(previous);
        }

        return hashes;
    }

    /// <summary>A keyed, non-reversible tag for other identifiers (session ids, model names in Redis keys).</summary>
    public string Tag(string purpose, string value)
    {
        Span<byte> digest = stackalloc byte[32];
        // Domain-separated from the model keys ("tag" vs "model-key"), so no tag can reveal a hashing key.
        HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes("tag\0" + purpose + "\0" + value), digest);
        return Convert.ToHexStringLower(digest[..12]);
    }

    private byte[] ModelKey(string model)
    {
        lock (_gate)
        {
            if (!_modelKeys.TryGetValue(model, out var key))
            {
                key = HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes("model-key\0" + model));
                if (_modelKeys.Count < 1024)
                {
                    _modelKeys[model] = key;
                }
            }

            return key;
        }
    }
}
