using System.Globalization;
using System.Text;

namespace GpuFleet.Contracts;

/// <summary>
/// The <c>x-gpufleet-prefix-blocks</c> header: <c>v1;BLOCK_BYTES;TOTAL_BYTES;HASH,HASH,...</c> with each hash 16 hex
/// digits. The gateway cuts the canonical prompt text into blocks of BLOCK_BYTES and sends the keyed chained hash
/// of every full block; the worker maps block i to the prompt token where it ends (proportionally:
/// (i+1)·BLOCK_BYTES/TOTAL_BYTES of the prompt) and reports which blocks it still holds.
/// </summary>
public static class PrefixBlockHeader
{
    private const string Version = "v1";

    /// <summary>More blocks than this are not sent (the header stays below 20 KB); later blocks just get no affinity.</summary>
    public const int MaxBlocks = 1024;

    public static string Format(int blockBytes, long totalBytes, IReadOnlyList<ulong> hashes)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        var count = Math.Min(hashes.Count, MaxBlocks);
        var text = new StringBuilder(24 + (count * 17));
        text.Append(Version).Append(';').Append(blockBytes.ToString(CultureInfo.InvariantCulture))
            .Append(';').Append(totalBytes.ToString(CultureInfo.InvariantCulture)).Append(';');
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            text.Append(hashes[i].ToString("x16", CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    /// <summary>Parses the header; false for anything malformed (the worker then simply ignores it).</summary>
    public static bool TryParse(string? value, out int blockBytes, out long totalBytes, out ulong[] hashes)
    {
        blockBytes = 0;
        totalBytes = 0;
        hashes = [];
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        var parts = value.Split(';');
        if (parts.Length != 4 || parts[0] != Version
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out blockBytes) || blockBytes <= 0
            || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out totalBytes) || totalBytes <= 0)
        {
            return false;
        }

        var items = parts[3].Length == 0 ? [] : parts[3].Split(',');
        if (items.Length > MaxBlocks || (long)items.Length * blockBytes > totalBytes)
        {
            return false;
        }

        var parsed = new ulong[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            if (items[i].Length != 16 || !ulong.TryParse(items[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out parsed[i]))
            {
                return false;
            }
        }

        hashes = parsed;
        return true;
    }

    /// <summary>The prompt token at which block <paramref name="index"/> ends, for a prompt of <paramref name="promptTokens"/> tokens.</summary>
    public static int TokenEnd(int index, int blockBytes, long totalBytes, int promptTokens)
    {
        // Integer ceiling of (index + 1) * blockBytes * promptTokens / totalBytes: exact, unlike floating point.
        var scaled = (long)(index + 1) * blockBytes * promptTokens;
        return (int)Math.Min(promptTokens, (scaled + totalBytes - 1) / totalBytes);
    }
}
