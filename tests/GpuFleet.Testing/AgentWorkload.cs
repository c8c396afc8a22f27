using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace GpuFleet.Testing;

/// <summary>
/// Requests shaped like a coding agent's (Qwen Code and similar OpenAI-compatible agent CLIs): a long system prompt,
/// ten tool schemas, a long context message, streaming with usage, a large max_tokens; then turns that append an
/// assistant tool call and its result. Sizes follow a recorded first request (~60 KB: a 23 KB system prompt, 9.5 KB
/// of context); the text is varied so that it tokenizes like prose and code, not like one repeated phrase.
/// </summary>
public static class AgentWorkload
{
    private static readonly string[] Tools = ["read_file", "write_file", "edit", "glob", "grep", "run_shell_command", "list_directory", "web_fetch", "todo_write", "task"];

    private static readonly string[] Rules =
    [
        "Always read a file before you edit it, and keep the surrounding style, naming and comments consistent.",
        "Prefer small, verifiable steps: make one change, run the relevant tests, then continue.",
        "Never invent an API; search the repository for existing helpers before writing a new one.",
        "When a command may change the system, explain what it does and why before running it.",
        "Use absolute paths with the file tools; relative paths are resolved against the project root.",
        "Keep answers short in the terminal: the user reads them between other work.",
        "If a test fails, read its output carefully and fix the cause rather than the symptom.",
        "Do not commit unless the user asks; when you do, write a message that says why, not what.",
        "Respect the project's lint and format rules, and run them after your edits.",
        "When unsure about the user's intent, ask one precise question instead of guessing.",
    ];

    /// <summary>The agent's system prompt: about <paramref name="bytes"/> bytes of instructions, identical for every conversation of this <paramref name="agent"/>.</summary>
    public static string SystemPrompt(int bytes = 23_000, string agent = "coder")
    {
        var text = new StringBuilder($"You are {agent}, an interactive command-line agent that helps with software engineering tasks.\n\n# Core mandates\n");
        for (var i = 0; text.Length < bytes; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"- ({i + 1}) {Rules[i % Rules.Length]} ");
            text.Append(CultureInfo.InvariantCulture, $"This matters most in section {(i * 7) % 31} of the workflow, where step {i % 9} depends on it.\n");
        }

        return text.ToString();
    }

    /// <summary>
    /// Ten function tools with JSON-schema parameters, as agents declare them. A <paramref name="toolset"/> name makes the
    /// descriptions differ from every other toolset's (the benchmarks' runs must not reuse each other's cached tools).
    /// </summary>
    public static JsonArray ToolSchemas(string? toolset = null) =>
    [
        .. Tools.Select((name, i) => (JsonNode)new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = name,
                ["description"] = toolset is null ? ToolDescription(name, i) : $"[{toolset}] {ToolDescription(name, i)}",
                ["parameters"] = new JsonObject
                {
                    ["type"] = "object",
                    ["properties"] = new JsonObject
                    {
                        ["path"] = new JsonObject { ["type"] = "string", ["description"] = "Absolute path of the file or directory to work on." },
                        ["pattern"] = new JsonObject { ["type"] = "string", ["description"] = "A glob or regular expression, depending on the tool." },
                        ["limit"] = new JsonObject { ["type"] = "integer", ["description"] = "Most lines or entries to return." },
                    },
                    ["required"] = new JsonArray("path"),
                },
            },
        }),
    ];

    /// <summary>Agents describe each tool at length (usage notes, examples): about 2.4 KB each, ~27 KB for the ten.</summary>
    private static string ToolDescription(string name, int index)
    {
        var text = new StringBuilder($"{name.Replace('_', ' ')}: returns the result as text; errors are reported, never thrown.\n\nUsage notes:\n");
        for (var i = 0; text.Length < 2_400; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"- {Rules[(index + i) % Rules.Length]} (note {i + 1} for {name})\n");
        }

        return text.ToString();
    }

    /// <summary>The first user message: the task and about <paramref name="bytes"/> bytes of project context (file listing and code).</summary>
    public static string ContextMessage(string task, int bytes = 9_500)
    {
        var text = new StringBuilder($"{task}\n\n<project_context>\n");
        for (var i = 0; text.Length < bytes; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"src/Module{i}/Service{i}.cs:\n");
            text.Append(CultureInfo.InvariantCulture, $"public sealed class Service{i}(ILogger<Service{i}> logger)\n{{\n    public async Task<int> RunAsync(int count, CancellationToken cancel)\n    {{\n");
            text.Append(CultureInfo.InvariantCulture, $"        logger.LogInformation(\"Running {{Count}} items in module {i}\", count);\n        await Task.Delay(count * {i + 1}, cancel);\n        return count + {i * 3};\n    }}\n}}\n");
        }

        return text.Append("</project_context>").ToString();
    }

    /// <summary>A first request: system prompt, tools (of <paramref name="toolset"/>), the context message; streaming with usage; max_tokens 32000 as agents send.</summary>
    public static JsonObject FirstRequest(string model, string task, string systemPrompt, int maxTokens = 32_000, string? toolset = null) => new()
    {
        ["model"] = model,
        ["stream"] = true,
        ["stream_options"] = new JsonObject { ["include_usage"] = true },
        ["max_tokens"] = maxTokens,
        ["temperature"] = 0,
        ["tools"] = ToolSchemas(toolset),
        ["messages"] = new JsonArray
        {
            new JsonObject { ["role"] = "system", ["content"] = systemPrompt },
            new JsonObject { ["role"] = "user", ["content"] = ContextMessage(task) },
        },
    };

    /// <summary>The next turn: the previous request's messages, an assistant tool call, and the tool's result.</summary>
    public static JsonObject NextTurn(JsonObject previous, int turn)
    {
        var next = previous.DeepClone().AsObject();
        var messages = next["messages"]!.AsArray();
        var id = $"call_{turn}";
        messages.Add(new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = "",
            ["tool_calls"] = new JsonArray(new JsonObject
            {
                ["id"] = id,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "read_file", ["arguments"] = $"{{\"path\":\"/repo/src/Module{turn}/Service{turn}.cs\"}}" },
            }),
        });
        messages.Add(new JsonObject
        {
            ["role"] = "tool",
            ["tool_call_id"] = id,
            ["content"] = ContextMessage($"Contents of Service{turn}.cs", 1_500),
        });
        return next;
    }
}
