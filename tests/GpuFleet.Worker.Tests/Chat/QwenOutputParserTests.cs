using System.Text.Json;
using System.Text.RegularExpressions;
using GpuFleet.Worker.Chat;

namespace GpuFleet.Worker.Tests.Chat;

/// <summary>
/// The parser on text in the exact format the model writes, fed whole, character by character, split at every
/// position and in random chunks: the events (consecutive deltas of one kind merged) must always be the same.
/// </summary>
public sealed partial class QwenOutputParserTests
{
    private static readonly ChatTool[] Tools =
    [
        new("get_weather", "Weather in a city.", Schema("""
            {"type": "object", "properties": {
              "city": {"type": "string"}, "zip": {"type": "string"}, "days": {"type": "integer"},
              "scale": {"type": ["number", "null"]}, "detailed": {"type": "boolean"},
              "options": {"type": "object"}, "hours": {"type": "array", "items": {"type": "integer"}},
              "unit": {"enum": ["c", "f"]}, "mode": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}
            """)),
        new("search", null, Schema("""{"type": "object", "properties": {"query": {"type": "string"}}}""")),
    ];

    [Fact]
    public void Reasoning_then_content()
    {
        AssertParses(
            "Let me think.\nTwo plus two.\n</think>\n\nThe answer is 4.",
            [new ReasoningDelta("Let me think.\nTwo plus two."), new ContentDelta("The answer is 4.")]);
    }

    [Fact]
    public void Content_only_when_thinking_is_disabled()
    {
        AssertParses("Hello!\n\n  How are you?", [new ContentDelta("Hello!\n\n  How are you?")], thinking: false);
        AssertParses("Plain <think> text </think> stays content.", [new ContentDelta("Plain <think> text </think> stays content.")], thinking: false, tools: false);
    }

    [Fact]
    public void Redundant_think_opener_is_dropped_and_its_absence_changes_nothing()
    {
        ChatOutputEvent[] expected = [new ReasoningDelta("Hmm."), new ContentDelta("Done.")];
        AssertParses("Hmm.\n</think>\n\nDone.", expected);
        AssertParses("<think>\nHmm.\n</think>\n\nDone.", expected);
        AssertParses("\n<think>Hmm.</think>Done.", expected);
    }

    [Fact]
    public void Reasoning_never_closed_stays_reasoning()
    {
        AssertParses("Still thinking about <thi", [new ReasoningDelta("Still thinking about <thi")], tools: false);
    }

    [Fact]
    public void Tool_call_with_string_number_and_object_parameters()
    {
        AssertParses(
            "I'll check the weather.\n</think>\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n"
            + "<parameter=days>\n3\n</parameter>\n<parameter=options>\n{\"units\": \"metric\", \"nested\": [1, 2.50, null]}\n</parameter>\n"
            + "</function>\n</tool_call>",
            [
                new ReasoningDelta("I'll check the weather."),
                new ToolCallParsed(0, "call_0", "get_weather", """{"city":"New York","days":3,"options":{"units":"metric","nested":[1,2.50,null]}}"""),
            ]);
    }

    [Fact]
    public void Parameter_values_follow_the_schema_type_and_lose_one_newline_each_side()
    {
        AssertParses(
            "<tool_call>\n<function=get_weather>\n<parameter=zip>\n02139\n</parameter>\n<parameter=city>\n\n  two\n  lines \n\n</parameter>\n"
            + "<parameter=scale>\nNone\n</parameter>\n<parameter=detailed>\nTrue\n</parameter>\n<parameter=hours>\n[9, 12]\n</parameter>\n"
            + "<parameter=days>\nthree\n</parameter>\n<parameter=unit>\nc\n</parameter>\n<parameter=mode>\n7\n</parameter>\n"
            + "<parameter=extra>\n{\"free\": true}\n</parameter>\n<parameter=zip>\n10001\n</parameter>\n</function>\n</tool_call>",
            [
                new ToolCallParsed(0, "call_0", "get_weather",
                    """{"zip":"10001","city":"\n  two\n  lines \n","scale":null,"detailed":true,"hours":[9,12],"days":"three","unit":"c","mode":7,"extra":{"free":true}}"""),
            ],
            thinking: false);
    }

    [Fact]
    public void Two_tool_calls_after_content()
    {
        AssertParses(
            "Checking both.\n\n<tool_call>\n<function=search>\n<parameter=query>\n42\n</parameter>\n</function>\n</tool_call>\n"
            + "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
            [
                new ContentDelta("Checking both."),
                new ToolCallParsed(0, "call_0", "search", """{"query":"42"}"""),
                new ToolCallParsed(1, "call_1", "get_weather", """{"city":"Paris"}"""),
            ],
            thinking: false);
    }

    [Fact]
    public void Tool_call_ends_reasoning_without_think_close()
    {
        AssertParses(
            "Need to search.\n\n<tool_call>\n<function=search>\n<parameter=query>\ncats\n</parameter>\n</function>\n</tool_call>",
            [new ReasoningDelta("Need to search."), new ToolCallParsed(0, "call_0", "search", """{"query":"cats"}""")]);
    }

    [Fact]
    public void Text_before_and_after_tool_calls_is_content()
    {
        AssertParses(
            "Thinking.\n</think>\n\nLet me look that up.\n\n<tool_call>\n<function=search>\n<parameter=query>\nx\n</parameter>\n</function>\n</tool_call>\n\nAnything else?\n",
            [
                new ReasoningDelta("Thinking."),
                new ContentDelta("Let me look that up."),
                new ToolCallParsed(0, "call_0", "search", """{"query":"x"}"""),
                new ContentDelta("Anything else?"),
            ]);
    }

    [Fact]
    public void Unterminated_tool_call_becomes_content_at_complete()
    {
        AssertParses(
            "Sure.\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
            [new ContentDelta("Sure.\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nPar")],
            thinking: false);
    }

    [Fact]
    public void Call_closed_by_function_end_counts_without_tool_call_end()
    {
        AssertParses(
            "<tool_call>\n<function=search>\n<parameter=query>\nq\n</parameter>\n</function>\n",
            [new ToolCallParsed(0, "call_0", "search", """{"query":"q"}""")],
            thinking: false);
    }

    [Fact]
    public void Missing_parameter_close_ends_at_the_next_parameter()
    {
        AssertParses(
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n<parameter=days>\n2\n</function>\n</tool_call>",
            [new ToolCallParsed(0, "call_0", "get_weather", """{"city":"Oslo","days":2}""")],
            thinking: false);
    }

    [Fact]
    public void Malformed_tool_call_is_returned_as_content()
    {
        AssertParses(
            "Try:\n<tool_call>\nno function here\n</tool_call>\nok",
            [new ContentDelta("Try:\n<tool_call>\nno function here\n</tool_call>ok")],
            thinking: false);
    }

    [Fact]
    public void Without_tools_tool_call_markup_is_content()
    {
        const string text = "<tool_call>\n<function=search>\n</function>\n</tool_call>";
        AssertParses("Done.\n</think>\n\n" + text, [new ReasoningDelta("Done."), new ContentDelta(text)], tools: false);
    }

    [Fact]
    public void Unknown_tool_values_become_json_when_they_parse_as_a_non_string()
    {
        AssertParses(
            "<tool_call>\n<function=other>\n<parameter=n>\n5\n</parameter>\n<parameter=s>\nhello\n</parameter>\n"
            + "<parameter=q>\n\"quoted\"\n</parameter>\n<parameter=b>\nFalse\n</parameter>\n</function>\n</tool_call>",
            [new ToolCallParsed(0, "call_0", "other", """{"n":5,"s":"hello","q":"\"quoted\"","b":false}""")],
            thinking: false);
    }

    [Fact]
    public void Text_streams_as_soon_as_it_cannot_be_a_tag()
    {
        var parser = new QwenOutputParser(thinkingEnabled: true, toolsEnabled: true, Tools);

        Assert.Equal([new ReasoningDelta("Step one")], parser.Push("Step one\n"));
        Assert.Equal([new ReasoningDelta("\nmore")], parser.Push("more</thi"));
        Assert.Empty(parser.Push("nk>\n\n"));
        Assert.Equal([new ContentDelta("Answer")], parser.Push("Answer <tool_"));
        Assert.Equal([new ContentDelta(" <tool_x")], parser.Push("x"));
        Assert.Empty(parser.Push(" <tool_call>\n<function=search>\n"));
        var call = Assert.IsType<ToolCallParsed>(Assert.Single(parser.Push("</function>\n</tool_call>")));
        Assert.Equal(("search", "{}"), (call.Name, call.ArgumentsJson));
        Assert.Empty(parser.Complete());
        Assert.Throws<InvalidOperationException>(() => parser.Push("x"));
        Assert.Throws<InvalidOperationException>(() => parser.Complete());
    }

    [Fact]
    public void Default_ids_are_call_and_24_alphanumerics()
    {
        var parser = new QwenOutputParser(thinkingEnabled: false, toolsEnabled: true);
        var events = parser.Push("<tool_call>\n<function=a>\n</function>\n</tool_call><tool_call>\n<function=b>\n</function>\n</tool_call>");

        var calls = events.Cast<ToolCallParsed>().ToList();
        Assert.Equal(new[] { 0, 1 }, calls.Select(c => c.Index));
        Assert.All(calls, c => Assert.Matches(IdPattern(), c.Id));
        Assert.NotEqual(calls[0].Id, calls[1].Id);
    }

    [Fact]
    public void A_rendered_assistant_turn_parses_back_to_the_same_message()
    {
        var turn = new ChatMessage("assistant", "Checking.")
        {
            ReasoningContent = "The user wants weather.",
            ToolCalls =
            [
                new("x", "get_weather", """{"city": "São Paulo", "days": 3, "scale": 0.5, "detailed": true, "options": {"a": [1, 2]}, "hours": []}"""),
                new("y", "search", """{"query": "line one\nline two"}"""),
            ],
        };
        var prompt = QwenChatFormat.Render([new("user", "Weather?"), turn], new() { Tools = Tools, AddGenerationPrompt = false });
        const string start = "<|im_start|>assistant\n<think>\n";
        var generated = prompt[(prompt.LastIndexOf(start, StringComparison.Ordinal) + start.Length)..^"<|im_end|>\n".Length];

        AssertParses(
            generated,
            [
                new ReasoningDelta("The user wants weather."),
                new ContentDelta("Checking."),
                new ToolCallParsed(0, "call_0", "get_weather", """{"city":"São Paulo","days":3,"scale":0.5,"detailed":true,"options":{"a":[1,2]},"hours":[]}"""),
                new ToolCallParsed(1, "call_1", "search", """{"query":"line one\nline two"}"""),
            ]);
    }

    [Fact]
    public void Random_texts_parse_the_same_however_they_are_split()
    {
        string[] pieces = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<function=search>", "<function=get_weather>", "</function>",
            "<parameter=query>", "<parameter=days>", "</parameter>", "\n", "\n\n", " ", "\u3000", "word", "42", "{\"a\": 1}", "<", "</", "<tool_", "</thi", "é🚀"];
        var random = new Random(7);
        for (var n = 0; n < 300; n++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 25)).Select(_ => pieces[random.Next(pieces.Length)]));
            var (thinking, tools) = (random.Next(2) == 0, random.Next(2) == 0);
            var whole = Parse(thinking, tools, [text]);
            foreach (var chunks in Chunkings(text))
            {
                Assert.Equal(whole, Parse(thinking, tools, chunks));
            }
        }
    }

    [GeneratedRegex("^call_[A-Za-z0-9]{24}$")]
    private static partial Regex IdPattern();

    private static void AssertParses(string text, ChatOutputEvent[] expected, bool thinking = true, bool tools = true)
    {
        foreach (var chunks in Chunkings(text))
        {
            Assert.Equal(expected, Parse(thinking, tools, chunks));
        }
    }

    private static List<ChatOutputEvent> Parse(bool thinking, bool tools, string[] chunks)
    {
        var next = 0;
        var parser = new QwenOutputParser(thinking, tools, Tools, () => "call_" + next++);
        var events = new List<ChatOutputEvent>();
        foreach (var chunk in chunks)
        {
            events.AddRange(parser.Push(chunk));
        }

        events.AddRange(parser.Complete());
        Assert.DoesNotContain(events, e => e is ContentDelta { Text.Length: 0 } or ReasoningDelta { Text.Length: 0 });
        return Merge(events);
    }

    private static IEnumerable<string[]> Chunkings(string text)
    {
        yield return [text];
        yield return [.. text.Select(c => c.ToString())];
        yield return ["", text, ""];
        for (var i = 1; i < text.Length; i++)
        {
            yield return [text[..i], text[i..]];
        }

        var random = new Random(20240601);
        for (var n = 0; n < 40; n++)
        {
            var chunks = new List<string>();
            for (var at = 0; at < text.Length;)
            {
                var size = Math.Min(random.Next(1, 9), text.Length - at);
                chunks.Add(text.Substring(at, size));
                at += size;
            }

            yield return [.. chunks];
        }
    }

    private static List<ChatOutputEvent> Merge(List<ChatOutputEvent> events)
    {
        var merged = new List<ChatOutputEvent>();
        foreach (var e in events)
        {
            if (merged.Count > 0 && merged[^1] is ContentDelta content && e is ContentDelta moreContent)
            {
                merged[^1] = new ContentDelta(content.Text + moreContent.Text);
            }
            else if (merged.Count > 0 && merged[^1] is ReasoningDelta reasoning && e is ReasoningDelta moreReasoning)
            {
                merged[^1] = new ReasoningDelta(reasoning.Text + moreReasoning.Text);
            }
            else
            {
                merged.Add(e);
            }
        }

        return merged;
    }

    private static JsonElement Schema(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
