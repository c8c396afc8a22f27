using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>
/// Hostile and malformed requests straight to a worker: each gets its 4xx in the OpenAI error shape (or a 200 where
/// the input is valid after all), never a 5xx or a hang, and the worker logs no unexpected error for any of them.
/// </summary>
[Collection(LlamaCollection.Name)]
public sealed class BadInputTests(SimulatedWorkerFixture fixture) : IClassFixture<SimulatedWorkerFixture>
{
    // Far above what any of these costs alone (milliseconds; a shared 2-core machine adds up to a second or two), and
    // about what the quadratic tokenizer step cost at 10,000 messages. The linear-growth test below is the fine check.
    private static readonly TimeSpan PerRequestBudget = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Every_catalogued_bad_input_gets_its_status_in_the_OpenAI_error_shape()
    {
        using var http = fixture.Http();
        var failures = await BadInput.CatalogueFailuresAsync(http, fixture.ModelId);

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.DoesNotContain("Unexpected error", fixture.Worker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_values_are_quoted_as_a_short_prefix()
    {
        using var http = fixture.Http();
        var huge = new string('m', 100_000);

        var (status, body, _) = await BadInput.SendAsync(http, BadInput.Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{huge}}","messages":[{"role":"user","content":"x"}]}"""));
        var (roleStatus, roleBody, _) = await BadInput.SendAsync(http, BadInput.Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{fixture.ModelId}}","messages":[{"role":"{{huge}}","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("'" + new string('m', 64) + "…'", Message(body), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, roleStatus);
        Assert.Contains("'" + new string('m', 64) + "…'", Message(roleBody), StringComparison.Ordinal);

        static string Message(string body) => System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString()!;
    }

    [Fact]
    public async Task Duplicate_keys_take_the_last_value()
    {
        using var http = fixture.Http();

        var (status, body, _) = await BadInput.SendAsync(http, BadInput.Chat,
            Encoding.UTF8.GetBytes($$"""{"model":"{{fixture.ModelId}}","stream":true,"stream":false,"max_tokens":1,"max_tokens":3,"messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.StartsWith("{", body, StringComparison.Ordinal); // not a stream: the second "stream" won
        Assert.Contains("\"completion_tokens\":3", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validation_time_grows_linearly_with_the_message_count()
    {
        using var http = fixture.Http();

        // The refusal of 9,000 messages (too long for the context) may cost at most a few times the refusal of 1,000:
        // the quadratic tokenizer step this replaced took 50 to 80 times longer for 8 times the messages.
        await BadInput.SendAsync(http, BadInput.Chat, ManyMessages(fixture.ModelId, 1_000)); // warm-up
        var small = await Median(() => BadInput.SendAsync(http, BadInput.Chat, ManyMessages(fixture.ModelId, 1_000)));
        var large = await Median(() => BadInput.SendAsync(http, BadInput.Chat, ManyMessages(fixture.ModelId, 9_000)));

        Assert.True(large < PerRequestBudget, $"9,000 messages took {large.TotalMilliseconds:F0} ms");
        Assert.True(large.TotalMilliseconds < 20 * Math.Max(small.TotalMilliseconds, 5),
            $"1,000 messages took {small.TotalMilliseconds:F0} ms, 9,000 took {large.TotalMilliseconds:F0} ms");

        static async Task<TimeSpan> Median(Func<Task<(HttpStatusCode Status, string Body, TimeSpan Elapsed)>> send)
        {
            var times = new List<TimeSpan>();
            for (var i = 0; i < 5; i++)
            {
                var (status, _, elapsed) = await send();
                Assert.Equal(HttpStatusCode.BadRequest, status);
                times.Add(elapsed);
            }

            return times.Order().ElementAt(times.Count / 2);
        }
    }

    [Fact]
    public async Task A_seeded_fuzzer_gets_no_5xx_and_only_OpenAI_shaped_4xx_each_within_the_budget()
    {
        using var http = fixture.Http();
        var (failures, statuses) = await BadInput.FuzzAsync(http, fixture.ModelId, seed: 1414, count: 3000, PerRequestBudget);

        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        // The fuzzer reaches both outcomes, else it tests nothing.
        Assert.True(statuses.GetValueOrDefault(200) > 100 && statuses.Where(s => s.Key is >= 400 and < 500).Sum(s => s.Value) > 1000,
            string.Join(", ", statuses.Select(s => $"{s.Key}: {s.Value}")));
        Assert.DoesNotContain("Unexpected error", fixture.Worker.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Transfer-Encoding: chunked\r\n\r\n10\r\n{\"model\":\"tiny-q")] // closed mid-chunk
    [InlineData("Content-Length: 100\r\n\r\n{\"model\":\"tiny-q")] // closed before the declared length
    public async Task An_abandoned_upload_is_no_unexpected_error_and_the_worker_serves_on(string framingAndStart)
    {
        for (var i = 0; i < 3; i++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, fixture.Worker.HttpPort);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + framingAndStart));
            await stream.FlushAsync();
            // Closed before the body's end: the worker's body read ends with a connection error.
            client.Client.Shutdown(SocketShutdown.Send);
            try
            {
                var buffer = new byte[4096];
                while (await stream.ReadAsync(buffer).AsTask().WithTimeout() > 0)
                {
                }
            }
            catch (IOException)
            {
                // The worker may answer with a reset: either way the connection is over.
            }
        }

        using var http = fixture.Http();
        var (status, _, _) = await BadInput.SendAsync(http, BadInput.Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{fixture.ModelId}}","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain("Unexpected error", fixture.Worker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_endless_chunked_body_is_cut_at_the_limit_with_413()
    {
        using var http = fixture.Http();
        using var content = new StreamContent(new EndlessJson());
        content.Headers.ContentType = new("application/json");

        try
        {
            using var response = await http.PostAsync(BadInput.Chat, content);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            Assert.Null(BadInput.ErrorShapeProblem(await response.Content.ReadAsStringAsync()));
        }
        catch (HttpRequestException ex) when (ex.InnerException is IOException)
        {
            // The worker answered 413 and closed the connection while the client was still sending (the usual case):
            // the upload was cut, which is what matters.
        }

        var (status, _, _) = await BadInput.SendAsync(http, BadInput.Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{fixture.ModelId}}","messages":[{"role":"user","content":"x"}]}"""));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain("Unexpected error", fixture.Worker.Output, StringComparison.Ordinal);
    }

    private static byte[] ManyMessages(string model, int count) => Encoding.UTF8.GetBytes(
        $$"""{"model":"{{model}}","messages":[{{string.Join(",", Enumerable.Range(0, count).Select(i => i % 2 == 0 ? """{"role":"user","content":"question"}""" : """{"role":"assistant","content":"answer"}"""))}}]}""");

    // A body that never ends (no Content-Length: sent chunked): a JSON string that goes on forever.
    private sealed class EndlessJson : Stream
    {
        private bool _started;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var start = 0;
            if (!_started)
            {
                var head = "{\"model\":\""u8;
                head.CopyTo(buffer.AsSpan(offset));
                start = head.Length;
                _started = true;
            }

            buffer.AsSpan(offset + start, count - start).Fill((byte)'a');
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
