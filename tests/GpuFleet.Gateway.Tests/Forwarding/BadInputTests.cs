using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using GpuFleet.Gateway.Routing;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Forwarding;

/// <summary>
/// Hostile and malformed requests through the gateway: the gateway answers what it reads itself (the same 400s as the
/// worker) and forwards the rest; nothing becomes a 5xx, every refusal is in the OpenAI error shape, and neither
/// process logs an unexpected error.
/// </summary>
public sealed class BadInputTests(KeyedGatewayFixture fixture) : IClassFixture<KeyedGatewayFixture>
{
    // Catches a hang or a gross blow-up even on a loaded machine (any request here takes milliseconds alone); the
    // worker's tests measure that validation time grows linearly with the message count.
    private static readonly TimeSpan PerRequestBudget = TimeSpan.FromSeconds(5);

    [Fact]
    public void The_token_estimate_saturates_instead_of_wrapping()
    {
        var request = new InspectedRequest { Model = "m", MaxTokens = int.MaxValue };

        Assert.Equal(int.MaxValue, request.TokenEstimate(int.MaxValue));
        Assert.Equal(int.MaxValue, request.TokenEstimate(5));
        Assert.Equal(15, new InspectedRequest { Model = "m", MaxTokens = 10 }.TokenEstimate(5));
        Assert.Equal(5, new InspectedRequest { Model = "m" }.TokenEstimate(5));
    }

    [Fact]
    public async Task A_max_tokens_near_int_max_for_a_key_with_a_tokens_limit_is_served()
    {
        using var http = fixture.Http();
        (string Path, string Body)[] requests =
        [
            (BadInput.Chat, $$"""{"model":"{{fixture.ModelId}}","max_tokens":2147483647,"messages":[{"role":"user","content":"hi"}]}"""),
            (BadInput.Chat, $$"""{"model":"{{fixture.ModelId}}","max_completion_tokens":2147483647,"messages":[{"role":"user","content":"{{new string('x', 100_000)}}"}]}"""),
            (BadInput.Completions, $$"""{"model":"{{fixture.ModelId}}","max_tokens":2147483647,"prompt":"hi"}"""),
        ];
        foreach (var (path, body) in requests)
        {
            var (status, text, _) = await BadInput.SendAsync(http, path, Encoding.UTF8.GetBytes(body));

            // Served, or (the long prompt) refused by the worker for its context: never the 500 of a wrapped estimate.
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.BadRequest, $"{(int)status}: {text}");
            Assert.True(status == HttpStatusCode.OK || text.Contains("context_length_exceeded", StringComparison.Ordinal), text);
        }

        Assert.DoesNotContain("Unexpected error", fixture.Gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_catalogued_bad_input_gets_its_status_in_the_OpenAI_error_shape()
    {
        using var http = fixture.Http();
        var failures = await BadInput.CatalogueFailuresAsync(http, fixture.ModelId);

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.DoesNotContain("Unexpected error", fixture.Gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unexpected error", fixture.Worker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_seeded_fuzzer_gets_no_5xx_and_only_OpenAI_shaped_4xx_each_within_the_budget()
    {
        using var http = fixture.Http();
        var (failures, statuses) = await BadInput.FuzzAsync(http, fixture.ModelId, seed: 2026, count: 2000, PerRequestBudget);

        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        Assert.True(statuses.GetValueOrDefault(200) > 100 && statuses.Where(s => s.Key is >= 400 and < 500).Sum(s => s.Value) > 600,
            string.Join(", ", statuses.Select(s => $"{s.Key}: {s.Value}")));
        Assert.DoesNotContain("Unexpected error", fixture.Gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unexpected error", fixture.Worker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_abandoned_chunked_upload_is_no_unexpected_error_and_the_gateway_serves_on()
    {
        using var http = fixture.Http();
        for (var i = 0; i < 3; i++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, fixture.Gateway.BaseAddress.Port);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                + $"Authorization: {http.DefaultRequestHeaders.Authorization}\r\n\r\n10\r\n{{\"model\":\"tiny-q"));
            await stream.FlushAsync();
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
                // A reset ends the connection as well as a close.
            }
        }

        var (status, _, _) = await BadInput.SendAsync(http, BadInput.Chat, Encoding.UTF8.GetBytes($$"""{"model":"{{fixture.ModelId}}","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain("Unexpected error", fixture.Gateway.Output, StringComparison.Ordinal);
    }
}
