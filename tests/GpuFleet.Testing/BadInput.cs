using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace GpuFleet.Testing;

/// <summary>One hostile or malformed request and the status it must get (always a 4xx in the OpenAI error shape, or a 200).</summary>
public sealed record BadInputCase(string Name, string Path, byte[] Body, int Status, string? ContentType = "application/json")
{
    public override string ToString() => Name;
}

/// <summary>
/// The bad-input catalogue that the worker and the gateway must both survive: every field with wrong types,
/// overflows, NaN and infinities, invalid UTF-8, lone surrogate escapes, deep nesting, huge strings and arrays,
/// duplicate keys and wrong content types. Also the OpenAI error shape check and a seeded body fuzzer.
/// </summary>
public static class BadInput
{
    public const string Chat = "/v1/chat/completions";
    public const string Completions = "/v1/completions";
    private const string Messages = """[{"role":"user","content":"Hi"}]""";

    /// <summary>The catalogue for a server serving <paramref name="model"/> with a context of 4,096 tokens and the default body limit.</summary>
    public static IReadOnlyList<BadInputCase> Catalogue(string model)
    {
        var m = JsonSerializer.Serialize(model);
        var cases = new List<BadInputCase>();
        void ChatCase(string name, string fields, int status, string messages = Messages) =>
            cases.Add(new BadInputCase("chat: " + name, Chat, Utf8($$"""{"model":{{m}},"messages":{{messages}}{{(fields.Length > 0 ? "," + fields : "")}}}"""), status));
        void PromptCase(string name, string fields, int status) =>
            cases.Add(new BadInputCase("completions: " + name, Completions, Utf8($$"""{"model":{{m}},{{fields}}}"""), status));
        void Raw(string name, string path, byte[] body, int status, string? contentType = "application/json") =>
            cases.Add(new BadInputCase(name, path, body, status, contentType));

        // Wrong types, field by field.
        cases.Add(new BadInputCase("chat: model is a number", Chat, Utf8($$"""{"model":5,"messages":{{Messages}}}"""), 400));
        cases.Add(new BadInputCase("chat: model is null", Chat, Utf8($$"""{"model":null,"messages":{{Messages}}}"""), 400));
        cases.Add(new BadInputCase("chat: model missing", Chat, Utf8($$"""{"messages":{{Messages}}}"""), 400));
        ChatCase("stream is a string", "\"stream\":\"yes\"", 400);
        ChatCase("messages is an object", "", 400, "{}");
        ChatCase("messages is a string", "", 400, "\"hello\"");
        ChatCase("messages is empty", "", 400, "[]");
        ChatCase("a message is a number", "", 400, "[5]");
        ChatCase("role is a number", "", 400, """[{"role":5,"content":"x"}]""");
        ChatCase("role is unknown", "", 400, """[{"role":"wizard","content":"x"}]""");
        ChatCase("content is a number", "", 400, """[{"role":"user","content":5}]""");
        ChatCase("content part is a string", "", 400, """[{"role":"user","content":["x"]}]""");
        ChatCase("content part is an image", "", 400, """[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]""");
        ChatCase("tool message without id", "", 400, """[{"role":"user","content":"x"},{"role":"tool","content":"y"}]""");
        ChatCase("tool call arguments not JSON", "", 400, """[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{nope"}}]}]""");
        ChatCase("max_tokens is a string", "\"max_tokens\":\"10\"", 400);
        ChatCase("max_tokens is fractional", "\"max_tokens\":1.5", 400);
        ChatCase("max_tokens is negative", "\"max_tokens\":-1", 400);
        ChatCase("max_tokens is zero", "\"max_tokens\":0", 400);
        ChatCase("max_completion_tokens is an object", "\"max_completion_tokens\":{}", 400);
        ChatCase("temperature is a string", "\"temperature\":\"hot\"", 400);
        ChatCase("temperature is out of range", "\"temperature\":3", 400);
        ChatCase("top_p is zero", "\"top_p\":0", 400);
        ChatCase("n is two", "\"n\":2", 400);
        ChatCase("stop is a number", "\"stop\":5", 400);
        ChatCase("stop holds a number", "\"stop\":[1]", 400);
        ChatCase("tools is an object", "\"tools\":{}", 400);
        ChatCase("tools holds a number", "\"tools\":[5]", 400);
        ChatCase("tool parameters is a string", "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":\"x\"}}]", 400);
        ChatCase("tool_choice is a number", "\"tool_choice\":5", 400);
        ChatCase("tool_choice is unknown", "\"tool_choice\":\"maybe\"", 400);
        ChatCase("tool_choice names no tool", "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", 400);
        ChatCase("response_format is a string", "\"response_format\":\"json\"", 400);
        ChatCase("seed is a string", "\"seed\":\"x\"", 400);
        ChatCase("stream_options is a number", "\"stream_options\":5", 400);
        ChatCase("user is a number", "\"user\":5", 400);
        PromptCase("prompt missing", "\"max_tokens\":4", 400);
        PromptCase("prompt is a number", "\"prompt\":5", 400);
        PromptCase("prompt is an object", "\"prompt\":{}", 400);
        PromptCase("prompt is empty", "\"prompt\":\"\"", 400);
        PromptCase("prompt is two strings", "\"prompt\":[\"a\",\"b\"]", 400);
        PromptCase("prompt token outside the vocabulary", "\"prompt\":[99999999]", 400);
        PromptCase("prompt token beyond int", "\"prompt\":[4294967296]", 400);

        // Overflows: numbers beyond every integer type, a max_tokens at int.MaxValue (valid: the worker clamps it).
        ChatCase("max_tokens is int.MaxValue (valid)", "\"max_tokens\":2147483647", 200);
        ChatCase("max_tokens beyond int", "\"max_tokens\":2147483648", 400);
        ChatCase("max_tokens is 1e300", "\"max_tokens\":1e300", 400);
        ChatCase("top_k beyond long", "\"top_k\":100000000000000000000", 400);
        ChatCase("seed beyond long", "\"seed\":18446744073709551616", 400);
        PromptCase("max_tokens is int.MaxValue (valid)", "\"prompt\":\"Hi\",\"max_tokens\":2147483647", 200);

        // NaN and infinities: not JSON as literals; as a number, an infinity after parsing.
        ChatCase("temperature NaN literal", "\"temperature\":NaN", 400);
        ChatCase("temperature Infinity literal", "\"temperature\":Infinity", 400);
        ChatCase("temperature overflows to infinity", "\"temperature\":1e999", 400);
        ChatCase("temperature is the string NaN", "\"temperature\":\"NaN\"", 400);

        // Invalid UTF-8 and lone surrogate escapes, in every kind of place a string is read.
        Raw("chat: invalid UTF-8 in content", Chat, [.. Utf8($$"""{"model":{{m}},"messages":[{"role":"user","content":"a"""), 0xC3, 0x28, .. Utf8("\"}]}")], 400);
        Raw("chat: overlong UTF-8 encoding", Chat, [.. Utf8($$"""{"model":{{m}},"messages":[{"role":"user","content":"a"""), 0xC0, 0xAF, .. Utf8("\"}]}")], 400);
        Raw("chat: raw UTF-16 surrogate bytes", Chat, [.. Utf8($$"""{"model":{{m}},"messages":[{"role":"user","content":"a"""), 0xED, 0xA0, 0x80, .. Utf8("\"}]}")], 400);
        cases.Add(new BadInputCase("chat: lone surrogate in model", Chat, Utf8($$"""{"model":"x\ud800","messages":{{Messages}}}"""), 400));
        ChatCase("lone surrogate in content", "", 400, """[{"role":"user","content":"hi \ud800 there"}]""");
        ChatCase("lone low surrogate in content", "", 400, """[{"role":"user","content":"\udc00"}]""");
        ChatCase("reversed surrogate pair in content", "", 400, """[{"role":"user","content":"\udc00\ud800"}]""");
        ChatCase("lone surrogate in role", "", 400, """[{"role":"\ud800","content":"x"}]""");
        ChatCase("lone surrogate in stop", "\"stop\":\"\\ud800\"", 400);
        ChatCase("lone surrogate in stop array", "\"stop\":[\"ok\",\"\\udbff\"]", 400);
        ChatCase("lone surrogate in tool_choice", "\"tool_choice\":\"\\ud800\"", 400);
        ChatCase("lone surrogate in a property name", "\"\\ud800\":1", 400);
        ChatCase("lone surrogate in an unknown field", "\"metadata\":{\"k\":\"\\ud800\"}", 400);
        ChatCase("lone surrogate in user", "\"user\":\"\\ud800\"", 400);
        ChatCase("lone surrogate in tool parameters", "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"description\":\"\\ud800\"}}}]", 400);
        ChatCase("lone surrogate inside tool call arguments", "", 400,
            """[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":\"\\ud800\"}"}}]}]""");
        PromptCase("lone surrogate in prompt", "\"prompt\":\"\\ud800\"", 400);
        PromptCase("lone surrogate in prompt array", "\"prompt\":[\"\\ud800\"]", 400);
        ChatCase("a valid surrogate pair (valid)", "", 200, """[{"role":"user","content":"\ud83d\ude00"}]""");

        // Deep nesting: beyond the 64 levels any parser here accepts, in a field nobody reads and in a tool schema.
        ChatCase("deep nesting in an unknown field", "\"metadata\":" + new string('[', 200) + new string(']', 200), 400);
        ChatCase("deep nesting in tool parameters", "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":" + Nested(100) + "}}]", 400);
        ChatCase("nesting within the limit (valid)", "\"metadata\":" + new string('[', 50) + new string(']', 50), 200);
        ChatCase("deep nesting inside tool call arguments", "", 400,
            $$$"""[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":{{{new string('[', 100)}}}{{{new string(']', 100)}}}}"}}]}]""");

        // Huge values: quoted back as a short prefix at most, and refused before the work they would cost.
        var huge = new string('m', 1 << 20);
        cases.Add(new BadInputCase("chat: 1 MB model", Chat, Utf8($$"""{"model":"{{huge}}","messages":{{Messages}}}"""), 404));
        ChatCase("1 MB role", "", 400, $$"""[{"role":"{{huge}}","content":"x"}]""");
        ChatCase("1 MB tool_choice", $"\"tool_choice\":\"{huge}\"", 400);
        ChatCase("2 MB content beyond the context", "", 400, $$"""[{"role":"user","content":"{{new string('w', 2 << 20)}}"}]""");
        PromptCase("2 MB prompt beyond the context", $"\"prompt\":\"{new string('w', 2 << 20)}\"", 400);

        // Huge arrays.
        ChatCase("10,001 messages", "", 400, "[" + string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", 10_001)) + "]");
        ChatCase("9,000 messages beyond the context", "", 400, "[" + string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", 9_000)) + "]");
        ChatCase("10,000 stop sequences", "\"stop\":[" + string.Join(",", Enumerable.Repeat("\"s\"", 10_000)) + "]", 400);
        ChatCase("10,000 tools", "\"tools\":[" + string.Join(",", Enumerable.Range(0, 10_000).Select(i => $$$"""{"type":"function","function":{"name":"f{{{i}}}"}}""")) + "]", 400);
        PromptCase("500,000 prompt tokens", "\"prompt\":[" + string.Join(",", Enumerable.Repeat("1", 500_000)) + "]", 400);

        // Duplicate keys: accepted, the last one wins (as OpenAI's parser and JsonDocument do).
        cases.Add(new BadInputCase("chat: duplicate model, the last one valid", Chat, Utf8($$"""{"model":"nope","model":{{m}},"messages":{{Messages}}}"""), 200));
        cases.Add(new BadInputCase("chat: duplicate model, the last one unknown", Chat, Utf8($$"""{"model":{{m}},"model":"nope","messages":{{Messages}}}"""), 404));
        ChatCase("duplicate max_tokens, the last one invalid", "\"max_tokens\":5,\"max_tokens\":-5", 400);

        // Not JSON, not an object, and content types: the body decides, not the header.
        Raw("empty body", Chat, [], 400);
        Raw("body is an array", Chat, Utf8("[]"), 400);
        Raw("body is null", Chat, Utf8("null"), 400);
        Raw("body is a number", Completions, Utf8("1"), 400);
        Raw("body is truncated", Chat, Utf8($$"""{"model":{{m}},"messages":[{"role":"us"""), 400);
        Raw("two JSON documents", Chat, Utf8($$"""{"model":{{m}},"messages":{{Messages}}} {}"""), 400);
        Raw("trailing comma", Chat, Utf8($$"""{"model":{{m}},"messages":{{Messages}},}"""), 400);
        Raw("a comment", Chat, Utf8($$"""{"model":{{m}},/* hi */"messages":{{Messages}}}"""), 400);
        Raw("form-encoded body", Chat, Utf8("model=x&messages=y"), 400, "application/x-www-form-urlencoded");
        Raw("JSON sent as text/plain (valid)", Chat, Utf8($$"""{"model":{{m}},"messages":{{Messages}}}"""), 200, "text/plain");
        Raw("JSON sent as a form type (valid, as curl -d does)", Chat, Utf8($$"""{"model":{{m}},"messages":{{Messages}}}"""), 200, "application/x-www-form-urlencoded");
        Raw("JSON without a content type (valid)", Chat, Utf8($$"""{"model":{{m}},"messages":{{Messages}}}"""), 200, null);
        Raw("multipart body", Chat, Utf8("--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx\r\n--b--\r\n"), 400, "multipart/form-data; boundary=b");
        return cases;
    }

    /// <summary>Null when <paramref name="body"/> is an OpenAI error (<c>{"error":{"message","type","param","code"}}</c>) with a short message; else what is wrong.</summary>
    public static string? ErrorShapeProblem(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (!document.RootElement.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return "no 'error' object";
            }

            if (!error.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.String || message.GetString()!.Length == 0)
            {
                return "no 'error.message' string";
            }

            if (!error.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return "no 'error.type' string";
            }

            foreach (var field in (string[])["param", "code"])
            {
                if (!error.TryGetProperty(field, out var value) || value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                {
                    return $"no 'error.{field}' string or null";
                }
            }

            // A bad value is quoted as a short prefix at most: no message comes near the size of a hostile field.
            return message.GetString()!.Length <= 1024 ? null : $"a message of {message.GetString()!.Length} characters";
        }
        catch (JsonException ex)
        {
            return "not JSON: " + ex.Message;
        }
    }

    /// <summary>Sends a body as is (no re-encoding) and returns the status, the body and the time it took.</summary>
    public static async Task<(HttpStatusCode Status, string Body, TimeSpan Elapsed)> SendAsync(HttpClient http, string path, byte[] body, string? contentType = "application/json")
    {
        ArgumentNullException.ThrowIfNull(http);
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = contentType is null ? null : MediaTypeHeaderValue.Parse(contentType);
        var started = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Sends every catalogued case; what did not get its status, or got it outside the OpenAI error shape.</summary>
    public static async Task<List<string>> CatalogueFailuresAsync(HttpClient http, string model)
    {
        var failures = new List<string>();
        foreach (var bad in Catalogue(model))
        {
            var (status, body, _) = await SendAsync(http, bad.Path, bad.Body, bad.ContentType);
            if ((int)status != bad.Status)
            {
                failures.Add($"{bad.Name}: {(int)status}, expected {bad.Status}: {body[..Math.Min(300, body.Length)]}");
            }
            else if (bad.Status >= 400 && ErrorShapeProblem(body) is { } problem)
            {
                failures.Add($"{bad.Name}: {problem}");
            }
        }

        return failures;
    }

    /// <summary>
    /// Sends the <see cref="Fuzz"/> bodies; the failures (a 5xx, a 4xx outside the OpenAI shape, an answer slower than
    /// <paramref name="budget"/>) and how many answers each status got.
    /// </summary>
    public static async Task<(List<string> Failures, Dictionary<int, int> Statuses)> FuzzAsync(HttpClient http, string model, int seed, int count, TimeSpan budget)
    {
        var failures = new List<string>();
        var statuses = new Dictionary<int, int>();
        var i = 0;
        foreach (var (path, body) in Fuzz(model, seed, count))
        {
            var (status, text, elapsed) = await SendAsync(http, path, body);
            var code = (int)status;
            statuses[code] = statuses.GetValueOrDefault(code) + 1;
            var problem = code >= 500 ? "a 5xx" : code >= 400 ? ErrorShapeProblem(text) : null;
            if (problem is null && elapsed > budget)
            {
                problem = $"{elapsed.TotalMilliseconds:F0} ms";
            }

            if (problem is not null)
            {
                failures.Add(string.Create(CultureInfo.InvariantCulture, $"#{i} {path} {code} {problem}: {text[..Math.Min(200, text.Length)]} for {Encoding.UTF8.GetString(body)[..Math.Min(200, body.Length)]}"));
            }

            i++;
        }

        return (failures, statuses);
    }

    /// <summary>
    /// <paramref name="count"/> bodies mutated from valid chat and completion requests by a seeded random source: fields
    /// dropped, retyped, overflowed, nested, duplicated, given lone surrogates or huge values; bytes flipped, cut and
    /// inserted; message lists multiplied. The same seed gives the same bodies.
    /// </summary>
    public static IEnumerable<(string Path, byte[] Body)> Fuzz(string model, int seed, int count)
    {
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var chat = random.Next(2) == 0;
            var fields = chat ? ValidChat(model, random) : ValidCompletion(model, random);
            var rounds = 1 + random.Next(3);
            for (var r = 0; r < rounds; r++)
            {
                MutateFields(fields, random);
            }

            var body = Utf8(Render(fields));
            if (random.Next(4) == 0)
            {
                body = MutateBytes(body, random);
            }

            yield return (chat ? Chat : Completions, body);
        }
    }

    private static List<KeyValuePair<string, string>> ValidChat(string model, Random random)
    {
        var messages = new List<string> { """{"role":"system","content":"Be brief."}""", """{"role":"user","content":"Hello there"}""" };
        if (random.Next(3) == 0)
        {
            messages.Add("""{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"q\":\"x\"}"}}]}""");
            messages.Add("""{"role":"tool","tool_call_id":"c1","content":"42"}""");
            messages.Add("""{"role":"user","content":[{"type":"text","text":"and?"}]}""");
        }

        return
        [
            new("model", JsonSerializer.Serialize(model)),
            new("messages", "[" + string.Join(",", messages) + "]"),
            new("max_tokens", "8"),
            new("temperature", "0.7"),
            new("stream", random.Next(2) == 0 ? "true" : "false"),
            new("tools", """[{"type":"function","function":{"name":"get","description":"Gets","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}]"""),
            new("stop", """["\n\n"]"""),
        ];
    }

    private static List<KeyValuePair<string, string>> ValidCompletion(string model, Random random) =>
    [
        new("model", JsonSerializer.Serialize(model)),
        new("prompt", random.Next(3) == 0 ? "[1,2,3]" : "\"Once upon a time\""),
        new("max_tokens", "8"),
        new("stream", random.Next(2) == 0 ? "true" : "false"),
        new("seed", "7"),
    ];

    private static readonly string[] Values =
    [
        "null", "true", "false", "0", "-1", "1.5", "2147483647", "2147483648", "-2147483649", "9223372036854775808", "1e308", "1e999", "-1e999",
        "\"\"", "\"x\"", "\"\\ud800\"", "\"\\udfff\\ud800\"", "\"<|im_start|>system\"", "\"<think>\"", "[]", "{}", "[1,\"a\",null]",
        "{\"a\":{\"b\":[{}]}}", "[\"\\ud800\"]", "{\"\\ud800\":1}",
    ];

    private static readonly string[] Names =
    [
        "model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n", "stream", "stream_options",
        "stop", "tools", "tool_choice", "response_format", "seed", "user", "logprobs", "presence_penalty", "chat_template_kwargs", "\\ud800",
    ];

    private static void MutateFields(List<KeyValuePair<string, string>> fields, Random random)
    {
        switch (random.Next(9))
        {
            case 0 when fields.Count > 0:
                fields.RemoveAt(random.Next(fields.Count));
                break;
            case 1:
                Set(fields, random.Next(fields.Count), Values[random.Next(Values.Length)]);
                break;
            case 2:
                fields.Add(new(Names[random.Next(Names.Length)], Values[random.Next(Values.Length)]));
                break;
            case 3 when fields.Count > 0:
                // A duplicate key with another value.
                fields.Add(new(fields[random.Next(fields.Count)].Key, Values[random.Next(Values.Length)]));
                break;
            case 4:
                Set(fields, random.Next(fields.Count), random.Next(2) == 0 ? new string('[', 40 + random.Next(100)) + new string(']', 40 + random.Next(100)) : Nested(40 + random.Next(60)));
                break;
            case 5:
                Set(fields, random.Next(fields.Count), "\"" + new string((char)('a' + random.Next(26)), random.Next(1, 200_000)) + "\"");
                break;
            case 6:
                // Many messages: the cost of validation must stay linear.
                var count = random.Next(100, 12_000);
                fields.Add(new("messages", "[" + string.Join(",", Enumerable.Range(0, count).Select(i => i % 2 == 0 ? """{"role":"user","content":"q"}""" : """{"role":"assistant","content":"a"}""")) + "]"));
                break;
            case 7:
                // A message with a hostile field.
                fields.Add(new("messages", $$"""[{"role":{{Values[random.Next(Values.Length)]}},"content":{{Values[random.Next(Values.Length)]}}}]"""));
                break;
            default:
                fields.Add(new("messages", $$$"""[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":{{{Values[random.Next(Values.Length)]}}}}}]}]"""));
                break;
        }
    }

    private static void Set(List<KeyValuePair<string, string>> fields, int index, string value)
    {
        if (fields.Count == 0)
        {
            fields.Add(new("model", value));
            return;
        }

        fields[index] = new(fields[index].Key, value);
    }

    private static byte[] MutateBytes(byte[] body, Random random)
    {
        var bytes = new List<byte>(body);
        switch (random.Next(4))
        {
            case 0 when bytes.Count > 0:
                var start = random.Next(bytes.Count);
                bytes.RemoveRange(start, random.Next(1, Math.Min(16, bytes.Count - start) + 1));
                break;
            case 1 when bytes.Count > 0:
                bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                break;
            case 2:
                var insert = new byte[random.Next(1, 8)];
                random.NextBytes(insert);
                bytes.InsertRange(random.Next(bytes.Count + 1), insert);
                break;
            default:
                // Cut short: a truncated body.
                return [.. bytes.Take(random.Next(bytes.Count + 1))];
        }

        return [.. bytes];
    }

    private static string Render(List<KeyValuePair<string, string>> fields) =>
        "{" + string.Join(",", fields.Select(f => JsonSerializer.Serialize(f.Key).Replace("\\\\ud800", "\\ud800", StringComparison.Ordinal) + ":" + f.Value)) + "}";

    private static string Nested(int depth) => string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
