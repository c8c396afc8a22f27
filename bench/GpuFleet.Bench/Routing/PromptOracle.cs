using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using GpuFleet.Worker.Engine.CostModel;
using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// Token counts of workload requests with the real tokenizer, per message (content plus the chat template's few tokens
/// per turn; tools once, with the system turn they are rendered into), and the oracle: the prompt's longest message
/// prefix that any earlier request of the run sent, i.e. what a router knowing every worker's cache (and a cache that
/// never evicts) could reuse. The share it returns is applied to the worker's exact prompt tokens.
/// </summary>
internal sealed class PromptOracle(LlamaModel tokenizer)
{
    private const int TemplateTokensPerMessage = 5;
    private readonly ConcurrentDictionary<string, int> _tokens = new(StringComparer.Ordinal);
    private readonly HashSet<long> _seen = [];
    private readonly Lock _gate = new();

    /// <summary>Estimated tokens after each message boundary (the first includes the tools), and their chain keys.</summary>
    public (int[] Cumulative, long[] Keys) Boundaries(JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var messages = body["messages"]!.AsArray();
        var cumulative = new int[messages.Count];
        var keys = new long[messages.Count];
        var tools = body["tools"]?.ToJsonString() ?? string.Empty;
        long key = 17;
        var total = tools.Length == 0 ? 0 : Tokens(tools) + 40;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i]!.AsObject();
            var text = $"{message["role"]}\n{message["content"]}\n{message["tool_calls"]?.ToJsonString()}";
            total += Tokens(text) + TemplateTokensPerMessage;
            key = (key * 1_000_003) ^ (uint)string.GetHashCode(i == 0 ? tools + text : text, StringComparison.Ordinal);
            cumulative[i] = total;
            keys[i] = key;
        }

        return (cumulative, keys);
    }

    /// <summary>The share of this prompt an oracle could reuse; records the prompt's prefixes as seen from now on.</summary>
    public double ReusableShare(JsonObject body)
    {
        var (cumulative, keys) = Boundaries(body);
        var reusable = 0;
        lock (_gate)
        {
            for (var i = 0; i < keys.Length; i++)
            {
                if (_seen.Contains(keys[i]))
                {
                    reusable = cumulative[i];
                }
            }

            foreach (var key in keys)
            {
                _seen.Add(key);
            }
        }

        return cumulative.Length == 0 ? 0 : (double)reusable / (cumulative[^1] + 3);
    }

    /// <summary>
    /// Modelled GPU seconds of a session with ideal caching and full decode batches: each turn prefills only what is new
    /// since the previous turn (the first turn: all but its system turn, which the fleet shares), and each output token costs
    /// a full batch's decode step divided by its sequences.
    /// </summary>
    public double IdealSeconds(WorkloadSession session, CostModelProfile profile, int slots)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(profile);
        var seconds = 0.0;
        var previous = -1;
        foreach (var turn in session.Turns)
        {
            var (cumulative, _) = Boundaries(turn.Body);
            var prompt = cumulative[^1] + 3;
            var reused = previous >= 0 ? previous : cumulative[0];
            var fresh = Math.Max(1, prompt - reused);
            seconds += profile.StepSeconds(0, 0, [(fresh, prompt - fresh)]);
            seconds += turn.MaxTokens * profile.StepSeconds(slots, (long)slots * prompt, []) / slots;
            previous = prompt;
        }

        return seconds;
    }

    private int Tokens(string text) => _tokens.GetOrAdd(text, t => tokenizer.Tokenize(t, addSpecial: false, parseSpecial: false).Length);
}
