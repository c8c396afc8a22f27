using System.Text.Json;
using GpuFleet.Contracts;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>
/// Reads a request body as one JSON object, bounded in size, with every failure as a 400/413 in the
/// OpenAI shape: body too large, a body that <see cref="JsonRequestBody"/> refuses (invalid UTF-8, malformed
/// JSON, too deep, an escape that is no text), or a non-object document.
/// </summary>
internal static class JsonRequestReader
{
    public static async Task<JsonDocument> ReadObjectAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength > maxBytes)
        {
            throw TooLarge(maxBytes);
        }

        byte[] bytes;
        try
        {
            bytes = await RequestBodyReader.ReadAsync(request.Body, request.ContentLength, maxBytes, cancellationToken) ?? throw TooLarge(maxBytes);
        }
        catch (BadHttpRequestException ex)
        {
            // Kestrel's own refusal of the body (cut short, malformed chunks, over its limit), with the status it chose.
            throw new OpenAiException(ex.StatusCode, "The request body could not be read: it ended early or is malformed.", "invalid_request_error", null, "invalid_body");
        }
        catch (IOException)
        {
            // The client stopped sending (an abandoned chunked upload, a reset connection, a body shorter than its
            // Content-Length: EndOfStreamException is one): its doing, not an unexpected error; the 400 goes nowhere when
            // the connection is gone, and nothing is logged as a failure.
            throw OpenAiException.BadRequest("The request body ended before it was complete.", null, "invalid_body");
        }

        if (JsonRequestBody.Problem(bytes) is { } problem)
        {
            throw OpenAiException.BadRequest(problem, null, "invalid_json");
        }

        // Checked above: this parse cannot fail, and no string read from the document can throw.
        var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = JsonRequestBody.MaxDepth });
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw OpenAiException.BadRequest("The request body must be a JSON object.");
        }

        return document;
    }

    private static OpenAiException TooLarge(int maxBytes) =>
        new(413, $"The request body is larger than this worker accepts ({maxBytes} bytes).", "invalid_request_error", null, "request_too_large");
}
