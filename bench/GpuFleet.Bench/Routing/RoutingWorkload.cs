using System.Globalization;
using System.Text.Json.Nodes;
using GpuFleet.Testing;

namespace GpuFleet.Bench.Routing;

/// <summary>The traffic shapes of the routing benchmark.</summary>
internal enum WorkloadKind
{
    /// <summary>Agent-heavy team mix: 70 % coding-agent sessions, 20 % chat sessions, 10 % one-shot batch prompts.</summary>
    Mix,
    /// <summary>Coding-agent sessions only.</summary>
    Agent,
    /// <summary>Chat sessions only.</summary>
    Chat,
    /// <summary>One-shot batch prompts only.</summary>
    Batch,
    /// <summary>Agent sessions where one system prompt dominates (90 %): the hot-spot trap of affinity.</summary>
    Skewed,
    /// <summary>llm-d's benchmark shape: many tenants, each with a long shared prefix, one-shot questions at a rising rate.</summary>
    Llmd,
}

/// <summary>One request of a session: the body to send, its think time before it (modelled seconds) and its new messages' tokens.</summary>
internal sealed record WorkloadTurn(JsonObject Body, double ThinkSeconds, int MaxTokens);

/// <summary>A session: arrives at <see cref="ArrivalSeconds"/> (modelled), then sends its turns one after another.</summary>
internal sealed record WorkloadSession(int Id, string Kind, double ArrivalSeconds, IReadOnlyList<WorkloadTurn> Turns);

/// <summary>
/// Seeded workload generation: the same seed, kind and rate give the same sessions, arrivals and bodies byte for byte.
/// Sizes follow the recorded agent shape (<see cref="AgentWorkload"/>: ~23 KB system prompt, ten ~2.4 KB tool schemas,
/// 9.5 KB first context, ~1.5 KB tool results); output lengths are short (agents' tool calls) to keep the streamed
/// tokens within what this machine's CPUs can relay for 16 workers.
/// </summary>
internal static class RoutingWorkload
{
    /// <summary>Distinct agent system prompts (a team's few agents and versions).</summary>
    public const int Agents = 4;

    public const int AgentOutputTokens = 32;
    public const int ChatOutputTokens = 64;
    public const int BatchOutputTokens = 64;

    /// <summary>Tenants of the llm-d shape (its benchmark: 150 tenants sharing 6k-token prefixes).</summary>
    public const int LlmdTenants = 150;

    /// <summary>
    /// Sessions arriving as a Poisson process of <paramref name="sessionsPerSecond"/> over <paramref name="seconds"/>
    /// (llm-d: the rate rises in three equal steps to 1.25x <paramref name="sessionsPerSecond"/>, averaging to it).
    /// <paramref name="salt"/> makes every prefix of this run new to the fleet.
    /// </summary>
    public static IReadOnlyList<WorkloadSession> Generate(WorkloadKind kind, int seed, double sessionsPerSecond, double seconds, string model, string salt)
    {
        var random = new Random(seed);
        var sessions = new List<WorkloadSession>();
        var t = 0.0;
        for (var id = 0; ; id++)
        {
            var rate = kind == WorkloadKind.Llmd ? sessionsPerSecond * (0.75 + (0.25 * Math.Floor(3 * t / seconds))) : sessionsPerSecond;
            t += -Math.Log(1 - random.NextDouble()) / rate;
            if (t >= seconds)
            {
                return sessions;
            }

            var pick = kind switch
            {
                WorkloadKind.Mix => random.NextDouble() switch { < 0.7 => WorkloadKind.Agent, < 0.9 => WorkloadKind.Chat, _ => WorkloadKind.Batch },
                _ => kind,
            };
            sessions.Add(pick switch
            {
                WorkloadKind.Agent => AgentSession(random, id, t, model, salt, agent: random.Next(Agents)),
                WorkloadKind.Skewed => AgentSession(random, id, t, model, salt, agent: random.NextDouble() < 0.9 ? 0 : 1 + random.Next(Agents - 1)),
                WorkloadKind.Chat => ChatSession(random, id, t, model, salt),
                WorkloadKind.Batch => BatchRequest(random, id, t, model, salt),
                _ => LlmdRequest(random, id, t, model, salt),
            });
        }
    }

    /// <summary>A coding-agent session: 10 to 40 turns, each adding a tool call and its result, 1 to 5 s of think time between.</summary>
    private static WorkloadSession AgentSession(Random random, int id, double at, string model, string salt, int agent)
    {
        var turns = new List<WorkloadTurn>();
        var body = AgentWorkload.FirstRequest(model, $"Task {id}: fix the failing build in module {random.Next(1000)}.",
            AgentWorkload.SystemPrompt(agent: $"coder-{salt}-{agent}"), AgentOutputTokens, toolset: salt);
        var count = random.Next(10, 41);
        for (var turn = 0; turn < count; turn++)
        {
            turns.Add(new WorkloadTurn(body, turn == 0 ? 0 : 1 + (4 * random.NextDouble()), AgentOutputTokens));
            body = AgentWorkload.NextTurn(body, (id * 100) + turn);
            body["max_tokens"] = AgentOutputTokens;
        }

        return new WorkloadSession(id, "agent", at, turns);
    }

    /// <summary>A chat session: a short shared system prompt, 3 to 8 user turns of a sentence or two, 5 to 20 s apart.</summary>
    private static WorkloadSession ChatSession(Random random, int id, double at, string model, string salt)
    {
        var messages = new JsonArray { new JsonObject { ["role"] = "system", ["content"] = $"You are the team's assistant ({salt}). Answer briefly and cite the docs." } };
        var turns = new List<WorkloadTurn>();
        var count = random.Next(3, 9);
        for (var turn = 0; turn < count; turn++)
        {
            if (turn > 0)
            {
                messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = Sentence(random, id, turn, 40) });
            }

            messages.Add(new JsonObject { ["role"] = "user", ["content"] = Sentence(random, id, turn, 60) });
            turns.Add(new WorkloadTurn(Body(model, messages.DeepClone().AsArray(), ChatOutputTokens), turn == 0 ? 0 : 5 + (15 * random.NextDouble()), ChatOutputTokens));
        }

        return new WorkloadSession(id, "chat", at, turns);
    }

    /// <summary>A one-shot batch prompt: a shared instruction and ~6 KB of its own document.</summary>
    private static WorkloadSession BatchRequest(Random random, int id, double at, string model, string salt)
    {
        var messages = new JsonArray
        {
            new JsonObject { ["role"] = "system", ["content"] = $"Summarise the document for the weekly report ({salt}). Keep numbers exact." },
            new JsonObject { ["role"] = "user", ["content"] = AgentWorkload.ContextMessage($"Document {id}-{random.Next()}", 6_000) },
        };
        return new WorkloadSession(id, "batch", at, [new WorkloadTurn(Body(model, messages, BatchOutputTokens), 0, BatchOutputTokens)]);
    }

    /// <summary>llm-d's shape: one of <see cref="LlmdTenants"/> tenants' ~6k-token shared prefix, then a question of its own.</summary>
    private static WorkloadSession LlmdRequest(Random random, int id, double at, string model, string salt)
    {
        var tenant = random.Next(LlmdTenants);
        var messages = new JsonArray
        {
            new JsonObject { ["role"] = "system", ["content"] = AgentWorkload.SystemPrompt(26_000, $"tenant-{salt}-{tenant}") },
            new JsonObject { ["role"] = "user", ["content"] = Sentence(random, id, 0, 1_200) },
        };
        return new WorkloadSession(id, "llm-d", at, [new WorkloadTurn(Body(model, messages, BatchOutputTokens), 0, BatchOutputTokens)]);
    }

    private static JsonObject Body(string model, JsonArray messages, int maxTokens) => new()
    {
        ["model"] = model,
        ["stream"] = true,
        ["stream_options"] = new JsonObject { ["include_usage"] = true },
        ["max_tokens"] = maxTokens,
        ["temperature"] = 0,
        ["messages"] = messages,
    };

    private static string Sentence(Random random, int session, int turn, int bytes)
    {
        var words = new[] { "deploy", "latency", "cache", "worker", "gateway", "budget", "report", "metric", "incident", "review", "branch", "schema" };
        var text = new System.Text.StringBuilder(string.Create(CultureInfo.InvariantCulture, $"[{session}.{turn}] "));
        while (text.Length < bytes)
        {
            text.Append(words[random.Next(words.Length)]).Append(' ');
        }

        return text.Append('?').ToString();
    }
}
