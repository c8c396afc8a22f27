using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>
/// What every OpenAI POST endpoint does around its own work: counts the request for the drain, refuses new
/// work while draining or loading, reads the body as one bounded JSON object, and turns any
/// <see cref="OpenAiException"/> raised before the first response byte into the error response.
/// </summary>
internal static class OpenAiRequest
{
    public static async Task ServeAsync(HttpContext http, WorkerApi api, Func<JsonElement, Task> handle)
    {
        using var tracked = api.Lifecycle.Track();
        try
        {
            api.EnsureServing();
            using var document = await JsonRequestReader.ReadObjectAsync(http.Request, api.Options.MaxRequestBodyBytes, http.RequestAborted);
            await handle(document.RootElement);
        }
        catch (OpenAiException ex) when (!http.Response.HasStarted)
        {
            await ex.WriteAsync(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away; the engine already freed the slot.
        }
    }
}
