using System.Security.Cryptography;
using System.Text;

namespace GpuFleet.Worker.Chat;

/// <summary>
/// Incremental parser of Qwen3.5 / Qwen3.6 generated text: splits the stream into reasoning, content and
/// tool calls as it arrives. Events are the same however the text is split into deltas (up to how deltas of
/// one kind are merged).
/// </summary>
/// <remarks>
/// The model writes <c>reasoning\n&lt;/think&gt;\n\ncontent\n\n&lt;tool_call&gt;...&lt;/tool_call&gt;</c>
/// (the prompt already opened the think block, see <see cref="QwenChatFormat.GenerationStartsInReasoning"/>).
/// Like llama.cpp's Qwen3-Coder/Qwen3.5 parser: reasoning ends at &lt;/think&gt;, or at &lt;tool_call&gt; when
/// tools are on; whitespace around reasoning and content sections is dropped (the template trims both when the
/// turn is rendered back); each parameter value loses exactly one leading and one trailing newline. Beyond
/// llama.cpp, which constrains output by grammar, this parser is lenient: a redundant &lt;think&gt; at the start
/// of reasoning is dropped, text after a tool call becomes content, a missing &lt;/parameter&gt; ends at the
/// next parameter or &lt;/function&gt;, and a call the model closed with &lt;/function&gt; but not
/// &lt;/tool_call&gt; still counts. A tool call without a &lt;function=NAME&gt; header, or one cut off before
/// &lt;/function&gt; when generation ends (for example at the token limit), is returned as content text so that
/// no truncated call is ever executed. Reasoning never closed stays reasoning. Without tools, tool-call
/// markup is plain content.
/// </remarks>
internal sealed class QwenOutputParser
{
    private const string ThinkOpen = "<think>";
    private const string ThinkClose = "</think>";
    private const string CallOpen = "<tool_call>";
    private const string CallClose = "</tool_call>";
    private const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private static readonly string[] ReasoningEnds = [ThinkClose];
    private static readonly string[] ReasoningEndsWithTools = [ThinkClose, CallOpen];
    private static readonly string[] ContentEndsWithTools = [CallOpen];

    private readonly bool toolsEnabled;
    private readonly Dictionary<string, ChatTool> tools = new(StringComparer.Ordinal);
    private readonly Func<string> newId;
    private readonly StringBuilder callText = new();
    private string pending = "";
    private Section section;
    private bool sectionStart = true;
    private bool openerChecked;
    private int closeSearchFrom;
    private int callCount;
    private bool completed;
    private bool contentEmitted;
    private string spaceBeforeCall = "";

    /// <param name="thinkingEnabled">The prompt ended inside an open &lt;think&gt; block, so output starts as reasoning.</param>
    /// <param name="toolsEnabled">Tools were offered; otherwise tool-call markup is plain content.</param>
    /// <param name="tools">The offered tools, whose parameter schemas decide which values are JSON rather than strings.</param>
    /// <param name="idGenerator">Makes tool-call ids; default "call_" and 24 random alphanumerics.</param>
    public QwenOutputParser(bool thinkingEnabled, bool toolsEnabled, IReadOnlyList<ChatTool>? tools = null, Func<string>? idGenerator = null)
    {
        this.toolsEnabled = toolsEnabled;
        foreach (var tool in tools ?? [])
        {
            this.tools.TryAdd(tool.Name, tool);
        }

        newId = idGenerator ?? (() => "call_" + RandomNumberGenerator.GetString(IdAlphabet, 24));
        section = thinkingEnabled ? Section.Reasoning : Section.Content;
    }

    private enum Section
    {
        Reasoning,
        Content,
        ToolCall,
    }

    /// <summary>Takes the next piece of generated text; holds back what could still become a tag or trailing whitespace.</summary>
    public IReadOnlyList<ChatOutputEvent> Push(string textDelta)
    {
        ArgumentNullException.ThrowIfNull(textDelta);
        if (completed)
        {
            throw new InvalidOperationException("The parser has already completed.");
        }

        if (section == Section.ToolCall)
        {
            callText.Append(textDelta);
        }
        else
        {
            pending += textDelta;
        }

        var events = new List<ChatOutputEvent>();
        Advance(events, final: false);
        return events;
    }

    /// <summary>Ends generation: releases held text, minus trailing whitespace, and settles an unterminated tool call.</summary>
    public IReadOnlyList<ChatOutputEvent> Complete()
    {
        if (completed)
        {
            throw new InvalidOperationException("The parser has already completed.");
        }

        completed = true;
        var events = new List<ChatOutputEvent>();
        Advance(events, final: true);
        return events;
    }

    private void Advance(List<ChatOutputEvent> events, bool final)
    {
        while (section == Section.ToolCall ? AdvanceCall(events, final) : AdvanceText(events, final))
        {
        }
    }

    // Moves through reasoning or content; true when it consumed a tag and parsing should go on at once.
    private bool AdvanceText(List<ChatOutputEvent> events, bool final)
    {
        var reasoning = section == Section.Reasoning;
        if (sectionStart)
        {
            pending = PythonText.StripStart(pending);
            if (pending.Length == 0)
            {
                return false;
            }

            if (reasoning && !openerChecked)
            {
                if (pending.StartsWith(ThinkOpen, StringComparison.Ordinal))
                {
                    pending = pending[ThinkOpen.Length..];
                    openerChecked = true;
                    return true;
                }

                if (!final && ThinkOpen.StartsWith(pending, StringComparison.Ordinal))
                {
                    return false;
                }

                openerChecked = true;
            }

            sectionStart = false;
        }

        var ends = reasoning ? (toolsEnabled ? ReasoningEndsWithTools : ReasoningEnds) : (toolsEnabled ? ContentEndsWithTools : []);
        var (at, tag) = FirstTag(pending, ends);
        if (at >= 0)
        {
            var text = PythonText.StripEnd(pending[..at]);
            Emit(events, reasoning, text);
            spaceBeforeCall = reasoning ? "" : pending[text.Length..at];
            var rest = pending[(at + tag.Length)..];
            pending = "";
            if (tag == ThinkClose)
            {
                section = Section.Content;
                sectionStart = true;
                pending = rest;
            }
            else
            {
                section = Section.ToolCall;
                callText.Append(rest);
                closeSearchFrom = 0;
            }

            return true;
        }

        if (final)
        {
            Emit(events, reasoning, PythonText.StripEnd(pending));
            pending = "";
            return false;
        }

        var held = HeldTail(pending, ends);
        Emit(events, reasoning, pending[..^held]);
        pending = pending[^held..];
        return false;
    }

    // Collects a tool call up to </tool_call>; true when the call ended and parsing should go on at once.
    private bool AdvanceCall(List<ChatOutputEvent> events, bool final)
    {
        var at = callText.ToString(closeSearchFrom, callText.Length - closeSearchFrom).IndexOf(CallClose, StringComparison.Ordinal);
        if (at < 0 && !final)
        {
            // Resume the search where a close tag could still begin, so a long call is scanned once.
            closeSearchFrom = Math.Max(0, callText.Length - CallClose.Length + 1);
            return false;
        }

        var terminated = at >= 0;
        var bodyLength = terminated ? closeSearchFrom + at : callText.Length;
        var body = callText.ToString(0, bodyLength);
        pending = terminated ? callText.ToString(bodyLength + CallClose.Length, callText.Length - bodyLength - CallClose.Length) : "";
        callText.Clear();
        closeSearchFrom = 0;
        section = Section.Content;
        sectionStart = true;

        if (QwenToolCallBody.TryParse(body, requireFunctionClose: !terminated, out var name, out var arguments))
        {
            tools.TryGetValue(name, out var tool);
            events.Add(new ToolCallParsed(callCount++, newId(), name, QwenToolCallBody.ArgumentsJson(arguments, tool)));
        }
        else
        {
            // Not a usable call: give the client the text as the model wrote it, including the whitespace that
            // separated it from earlier content.
            Emit(events, reasoning: false, (contentEmitted ? spaceBeforeCall : "") + CallOpen + body + (terminated ? CallClose : ""));
        }

        return true;
    }

    private void Emit(List<ChatOutputEvent> events, bool reasoning, string text)
    {
        if (text.Length > 0)
        {
            events.Add(reasoning ? new ReasoningDelta(text) : new ContentDelta(text));
            contentEmitted |= !reasoning;
        }
    }

    private static (int At, string Tag) FirstTag(string text, string[] tags)
    {
        var best = (At: -1, Tag: "");
        foreach (var tag in tags)
        {
            var at = text.IndexOf(tag, StringComparison.Ordinal);
            if (at >= 0 && (best.At < 0 || at < best.At))
            {
                best = (at, tag);
            }
        }

        return best;
    }

    // How many trailing characters must wait: a possible start of a tag, and the whitespace before it (dropped
    // if a tag does follow).
    private static int HeldTail(string text, string[] tags)
    {
        var partial = 0;
        foreach (var tag in tags)
        {
            for (var k = Math.Min(tag.Length - 1, text.Length); k > partial; k--)
            {
                if (text.EndsWith(tag[..k], StringComparison.Ordinal))
                {
                    partial = k;
                    break;
                }
            }
        }

        var keepFrom = text.Length - partial;
        while (keepFrom > 0 && PythonText.IsSpace(text[keepFrom - 1]))
        {
            keepFrom--;
        }

        return text.Length - keepFrom;
    }
}
