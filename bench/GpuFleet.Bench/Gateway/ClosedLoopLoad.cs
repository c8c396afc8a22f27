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
    /// Sends <paramref name="count"/> requests with <paramref name="concurrency"/> callers; records them unless warming up.
    /// Returns this call's latencies (ms) of the requests answered 200.
    /// </summary>
    public async Task<List<double>> RunAsync(int count, int concurrency, bool record, CancellationToken cancellationToken)
    {
        var remaining = count;
        var clock = Stopwatch.StartNew();
        var callers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            var latencies = new List<double>(count / concurrency + 1);
            var errors = 0;
            while (Interlocked.Decrement(ref remaining) >= 0)
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

    public void Dispose() => _client.Dispose();

    private ByteArrayContent Content()
    {
        var content = new ByteArrayContent(_body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }
}
