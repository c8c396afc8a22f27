using GpuFleet.Contracts;
using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Api;

/// <summary>Attaches the gateway's prefix blocks (header <c>x-gpufleet-prefix-blocks</c>) to a request, mapped to prompt tokens.</summary>
internal static class GatewayPrefixBlocks
{
    /// <summary>The request with its blocks; unchanged when the header is absent or malformed (it is only a routing hint).</summary>
    public static GenerationRequest WithPrefixBlocks(this GenerationRequest request, string? header)
    {
        if (!PrefixBlockHeader.TryParse(header, out var blockBytes, out var totalBytes, out var hashes) || hashes.Length == 0)
        {
            return request;
        }

        var tokens = request.PromptTokens.Count;
        var blocks = new PrefixBlock[hashes.Length];
        for (var i = 0; i < hashes.Length; i++)
        {
            blocks[i] = new PrefixBlock(hashes[i], PrefixBlockHeader.TokenEnd(i, blockBytes, totalBytes, tokens));
        }

        return request with { PrefixBlocks = blocks };
    }
}
