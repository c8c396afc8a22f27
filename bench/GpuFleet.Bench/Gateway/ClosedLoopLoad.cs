using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace GpuFleet.Bench.Gateway;

/// <summary>
/// A fixed number of concurrent callers, each sending its next request as soon as its previous answer is
/// fully read (closed loop), over kept-alive connections of one HttpClient per target. Latency = from the
/// send to the last byte of the response body.
/// </summary>
internal sealed class ClosedLoopLoad : IDisposable
{
    private readonly HttpClient _client;
    private readonly Uri _url;
    private readonly byte[] _body;

    public ClosedLoopLoad(string name, Uri baseAddress, string path, byte[] body, int concurrency)
    {
        Name = name;
        _url = new Uri(baseAddress, path);
        _body = body;
        _client = new HttpClient(new SocketsHttpHandler
        {
            // One connection per caller, kept for the whole benchmark.
            MaxConnectionsPerServer = concurrency,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    public string Name { get; }

    /// <summary>Every latency measured outside warm-up, in milliseconds.</summary>
    public List<double> LatenciesMs { get; } = [];

    public int Errors { get; private set; }

    /// <summary>Elapsed time of the measured rounds, for throughput.</summary>
    public TimeSpan MeasuredTime { get; private set; }

    /// <summary>One request, its body read; the caller checks status and headers.</summary>
    public async Task<HttpResponseMessage> ProbeAsync(CancellationToken cancellationToken)
    {
        using var content = Content();
        var response = await _client.PostAsync(_url, content, cancellationToken);
        await response.Content.LoadIntoBufferAsync(cancellationToken);
        return response;
    }

    /// <summary>
    /// Sends <paramref name="count"/> requests with <paramref name="concurrency"/> callers, or as many as fit before
    /// <paramref name="until"/> (a timestamp) when it is given; records them unless warming up. Returns this call's
    /// latencies (ms) of the requests answered 200.
    /// </summary>
    public async Task<List<double>> RunAsync(int count, int concurrency, bool record, CancellationToken cancellationToken, long? until = null)
    {
        var remaining = count;
        var clock = Stopwatch.StartNew();
        var callers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            var latencies = new List<double>(Math.Min(count, 1_000_000) / concurrency + 1);
            var errors = 0;
            while (Interlocked.Decrement(ref remaining) >= 0 && (until is null || Stopwatch.GetTimestamp() < until))
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = Content() };
                var start = Stopwatch.GetTimestamp();
                using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                await using (var stream = await response.Content.ReadAsStreamAsync(cancellationToken))
                {
                    await stream.CopyToAsync(Stream.Null, cancellationToken);
                }

                var elapsed = Stopwatch.GetElapsedTime(start);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    latencies.Add(elapsed.TotalMilliseconds);
                }
                else
                {
                    errors++;
                }
            }

            return (latencies, errors);
        }).ToList();
        var results = await Task.WhenAll(callers);
        clock.Stop();
        var all = results.SelectMany(r => r.latencies).ToList();
        if (record)
        {
            MeasuredTime += clock.Elapsed;
            LatenciesMs.AddRange(all);
            Errors += results.Sum(r => r.errors);
        }

        return all;
    }

    /// <summary>
    /// Load for <paramref name="duration"/>, unrecorded, in one-second slices; returns the requests per second of the
    /// first and of the last slice, which show whether the processes' JIT (tiered compilation) has settled.
    /// </summary>
    public async Task<(int First, int Last)> WarmUpAsync(TimeSpan duration, int concurrency, CancellationToken cancellationToken)
    {
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        int? first = null;
        var last = 0;
        while (Stopwatch.GetTimestamp() < end)
        {
            var slice = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
            last = (await RunAsync(int.MaxValue, concurrency, record: false, cancellationToken, until: Math.Min(slice, end))).Count;
            first ??= last;
        }

        return (first ?? 0, last);
    }

    public void Dispose() => _client.Dispose();

    private ByteArrayContent Content()
    {
        var content = new ByteArrayContent(_body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }
}
