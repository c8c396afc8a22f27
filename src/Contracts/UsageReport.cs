using System.Globalization;

namespace GpuFleet.Contracts;

/// <summary>
/// Token usage a worker reports to the gateway (limits, metrics, calibration) whether or not the client asked for
/// usage: the <c>x-gpufleet-usage</c> header on a JSON response, or an SSE comment line
/// <c>: x-gpufleet-usage prompt=N;completion=N;cached=N</c> just before <c>data: [DONE]</c> (SSE clients ignore comments).
/// </summary>
public readonly record struct UsageReport(int PromptTokens, int CompletionTokens, int CachedTokens)
{
    /// <summary>The SSE comment prefix that carries the report in a stream.</summary>
    public const string CommentPrefix = ": " + GpuFleetHeaders.Usage + " ";

    public int TotalTokens => PromptTokens + CompletionTokens;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"prompt={PromptTokens};completion={CompletionTokens};cached={CachedTokens}");

    public static bool TryParse(ReadOnlySpan<char> text, out UsageReport report)
    {
        report = default;
        int prompt = -1, completion = -1, cached = -1;
        foreach (var range in text.Split(';'))
        {
            var part = text[range];
            var equals = part.IndexOf('=');
            if (equals <= 0 || !int.TryParse(part[(equals + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            switch (part[..equals])
            {
                case "prompt": prompt = value; break;
                case "completion": completion = value; break;
                case "cached": cached = value; break;
            }
        }

        if (prompt < 0 || completion < 0 || cached < 0)
        {
            return false;
        }

        report = new UsageReport(prompt, completion, cached);
        return true;
    }
}
