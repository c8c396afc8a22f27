#!/usr/bin/env python3
"""Regenerates QwenChatGoldens.cs: the expected prompts for QwenChatFormatGoldenTests.

Run by hand, not part of the build:
    python3 generate.py [path/to/Qwen3.5-4B.jinja] > QwenChatGoldens.cs
It needs python3-jinja2 (apt-get install python3-jinja2). The default template path is llama.cpp's copy
(models/templates/Qwen3.5-4B.jinja, sha256 a4aee8af...f715). The Jinja environment mirrors Hugging Face
transformers' apply_chat_template: trim_blocks, lstrip_blocks, a tojson that is json.dumps with
ensure_ascii=False and insertion key order, and raise_exception. Each case's input is OpenAI-style JSON
(tool-call arguments as a JSON string, parsed with json.loads before rendering, as servers do); the C#
test feeds the same JSON to QwenChatFormat.Render.
"""

import hashlib
import json
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE = sys.argv[1] if len(sys.argv) > 1 else "/tmp/np/src/models/templates/Qwen3.5-4B.jinja"


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.\nUse \"metric\" units unless asked; path C:\\tmp\\x, tab\there.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich or 東京"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "scale": {"type": "number", "default": 0.5, "exclusiveMaximum": 1e16},
                "detailed": {"type": "boolean"},
                "units": {"type": ["string", "null"], "enum": ["metric", "imperial", None]},
            },
            "required": ["city"],
        },
    },
}

SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "filters": {"type": "object"}, "tags": {"type": "array", "items": {"type": "string"}}}},
    },
}

NO_PARAMS = {"type": "function", "function": {"name": "now", "description": ""}}

WEATHER_ARGS = json.dumps({"city": "Paris", "days": 3, "scale": 0.1, "detailed": True, "units": None})
SEARCH_ARGS = json.dumps({"query": "  spaced\nquery  ", "filters": {"lang": "fr", "max": 10, "ratio": 1e-05, "nested": [1, 2.5, None, True, "x\"y"]}, "tags": []}, ensure_ascii=False)

CASES = [
    ("plain_user", {"messages": [{"role": "user", "content": "Hello!"}]}),
    ("system_user_thinking_disabled", {
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
        "enable_thinking": False,
    }),
    ("system_user_thinking_enabled", {
        "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "\nWhat is 2+2?  "}],
        "enable_thinking": True,
    }),
    ("no_generation_prompt", {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"}],
        "add_generation_prompt": False,
    }),
    ("empty_system_without_tools", {
        "messages": [{"role": "system", "content": "   "}, {"role": "user", "content": "Hi"}],
    }),
    ("multi_turn_reasoning", {
        "messages": [
            {"role": "system", "content": "Be helpful."},
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": "First answer", "reasoning_content": "\nfirst thoughts\n"},
            {"role": "user", "content": "Second question"},
            {"role": "assistant", "content": "<think>\ninline thoughts\n</think>\n\nSecond answer"},
            {"role": "user", "content": "Third question"},
            {"role": "assistant", "content": "Third answer", "reasoning_content": "third thoughts"},
            {"role": "assistant", "content": "thoughts without opener</think>\n\nFourth answer"},
            {"role": "assistant", "content": "<think>kept in content</think>Fifth", "reasoning_content": ""},
        ],
        "add_generation_prompt": False,
    }),
    ("tools_calls_and_results", {
        "tools": [WEATHER, SEARCH, NO_PARAMS],
        "messages": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "Weather in Paris, and search for it."},
            {"role": "assistant", "content": "Let me check.", "reasoning_content": "Need two tools.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": WEATHER_ARGS}},
                {"id": "call_2", "type": "function", "function": {"name": "search", "arguments": SEARCH_ARGS}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "  result one\nresult two  "},
            {"role": "assistant", "content": "It is 21 °C.", "reasoning_content": "Both tools answered."},
            {"role": "user", "content": "Thanks. What time is it?"},
        ],
    }),
    ("tool_loop_in_progress", {
        "tools": [NO_PARAMS],
        "messages": [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": None, "reasoning_content": "Call now.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "12:00"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{\"tz\": \"UTC\"}"}},
                {"id": "call_c", "type": "function", "function": {"name": "now", "arguments": "{\"tz\": \"CET\", \"fmt\": [\"hh\", \"mm\"]}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_b", "content": "12:00 UTC"},
            {"role": "tool", "tool_call_id": "call_c", "content": "13:00 CET"},
            {"role": "user", "content": "<tool_response>\nnot a real query\n</tool_response>"},
        ],
        "enable_thinking": False,
    }),
    ("tools_without_system", {
        "tools": [SEARCH],
        "messages": [{"role": "user", "content": "Find cats"}],
    }),
    ("tools_with_blank_system", {
        "tools": [NO_PARAMS],
        "messages": [{"role": "system", "content": "\n\n"}, {"role": "user", "content": "Hi"}],
    }),
    ("argument_scalars_python_style", {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "Calling.", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments":
                    "{\"a\": 1.0, \"b\": 1e-5, \"c\": 1e16, \"d\": 1E2, \"e\": -0.0, \"f\": 123456789.123456789, \"g\": 12345678901234567890,"
                    " \"h\": -0, \"i\": 0.0001, \"j\": 1234567890123456.0, \"k\": true, \"l\": false, \"m\": null, \"n\": \"\","
                    " \"o\": {\"x\": 2.50, \"y\": [1e300, -1.5e-7]}, \"a\": \"duplicate key keeps first position\"}"}},
            ]},
        ],
        "add_generation_prompt": False,
    }),
    ("unicode_and_whitespace", {
        "messages": [
            {"role": "system", "content": "\u3000Réponds en français 🇫🇷\u00a0"},
            {"role": "user", "content": "\x1c\u2003Ça va? 你好 👋🏽 \u2028"},
            {"role": "assistant", "content": "Très bien — et toi?\u200b", "reasoning_content": "\u00a0pensée\u00a0"},
            {"role": "user", "content": "Bien. Émoji: 🚀\tTab"},
        ],
    }),
    ("tool_message_first", {
        "messages": [{"role": "tool", "content": "orphan"}, {"role": "user", "content": "Hi"}],
    }),
    ("error_no_messages", {"messages": []}),
    ("error_no_user_query", {"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]}),
    ("error_only_tool_response_users", {"messages": [{"role": "user", "content": " <tool_response>x</tool_response>\n"}]}),
    ("error_system_not_first", {"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "S"}]}),
    ("error_unexpected_role", {"messages": [{"role": "user", "content": "Hi"}, {"role": "developer", "content": "D"}]}),
]


def render(template, case):
    messages = case["messages"]
    for message in messages:
        for call in message.get("tool_calls") or []:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    kwargs = {"messages": messages, "tools": case.get("tools"), "add_generation_prompt": case.get("add_generation_prompt", True)}
    if "enable_thinking" in case:
        kwargs["enable_thinking"] = case["enable_thinking"]
    try:
        return template.render(**kwargs), None
    except TemplateError as e:
        return None, str(e)


def cs_string(text):
    """A C# regular string literal, split after each newline; invisible and line-breaking characters escaped."""
    if text is None:
        return "null"
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x10000 and not ch.isprintable():
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    parts = "".join(out).split("\\n")
    pieces = ['"' + p + ('\\n' if i < len(parts) - 1 else "") + '"' for i, p in enumerate(parts)]
    pieces = [p for p in pieces if p != '""'] or ['""']
    return "\n                + ".join(pieces)


def main():
    with open(TEMPLATE, encoding="utf-8") as f:
        source = f.read()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()

    print("// Generated by generate.py from Qwen3.5-4B.jinja (sha256 " + digest + ") with Python jinja2; do not edit.")
    print("namespace GpuFleet.Worker.Tests.Chat;")
    print()
    print("/// <summary>Prompts rendered by the real Jinja template, one per OpenAI-style input.</summary>")
    print("internal static class QwenChatGoldens")
    print("{")
    print("    public static readonly IReadOnlyList<QwenChatGolden> All =")
    print("    [")
    for name, case in CASES:
        input_json = json.dumps(case, ensure_ascii=False)
        expected, error = render(template, json.loads(input_json))
        print("        new(")
        print('            "' + name + '",')
        print("            " + cs_string(json.dumps(case, ensure_ascii=False)) + ",")
        print("            " + cs_string(expected) + ",")
        print("            " + cs_string(error) + "),")
    print("    ];")
    print("}")
    print()
    print("/// <summary>One golden: the input JSON and the template's output, or the error it raised.</summary>")
    print("internal sealed record QwenChatGolden(string Name, string InputJson, string? Expected, string? Error);")


if __name__ == "__main__":
    main()
