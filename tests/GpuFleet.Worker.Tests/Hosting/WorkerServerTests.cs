using GpuFleet.Testing;
using GpuFleet.Worker.Hosting;

namespace GpuFleet.Worker.Tests.Hosting;

/// <summary>The worker's last line of defence: an unexpected exception becomes an OpenAI-shaped 500.</summary>
public sealed class WorkerServerTests
{
    [Fact]
    public async Task An_unexpected_exception_becomes_an_OpenAI_500_without_the_headers_set_before_it() =>
        Assert.Equal(
            new UnexpectedErrorResponse(500, "application/json", false, "server_error", "internal_error", false),
            await UnexpectedErrorProbe.ThrowThroughAsync(WorkerServer.HandleUnexpectedErrorsAsync));

    [Fact]
    public async Task A_cancelled_request_is_not_turned_into_an_error_response()
    {
        var (thrown, status) = await UnexpectedErrorProbe.CancelThroughAsync(WorkerServer.HandleUnexpectedErrorsAsync);

        Assert.IsType<OperationCanceledException>(thrown);
        Assert.Equal(200, status);
    }
}
