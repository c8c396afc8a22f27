using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using GpuFleet.Contracts.Grpc.Internal;

namespace GpuFleet.Contracts.Tests.Grpc;

/// <summary>Plain HttpClient over h2c, to look at the wire shape of our server's responses without our client in between.</summary>
internal static class RawHttp
{
    public static HttpClient CreateClient(Uri address) => new() { BaseAddress = address, Timeout = TestTimeouts.Default };

    /// <summary>Sends one framed message and reads the whole response, trailers included.</summary>
    public static async Task<HttpResponseMessage> SendAsync(
        HttpClient client,
        string path,
        IMessage message,
        string contentType = "application/grpc",
        IEnumerable<(string Name, string Value)>? headers = null)
    {
        var content = new ByteArrayContent(GrpcMessageFraming.ToFramedArray(message, null));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        // SendAsync ignores HttpClient.DefaultRequestVersion: the message itself must ask for HTTP/2.
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, TestTimeouts.Token());
        return response;
    }

    /// <summary>grpc-status wherever it came: the headers (trailers-only) or the trailers.</summary>
    public static string? Status(HttpResponseMessage response) =>
        Header(response.Headers, "grpc-status") ?? Header(response.TrailingHeaders, "grpc-status");

    public static string? Header(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
