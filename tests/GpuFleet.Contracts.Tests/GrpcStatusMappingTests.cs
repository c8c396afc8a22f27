using Grpc.Core;

namespace GpuFleet.Contracts.Tests;

/// <summary>The one HTTP-to-gRPC status table the gateway and the worker share.</summary>
public sealed class GrpcStatusMappingTests
{
    [Theory]
    [InlineData(400, StatusCode.InvalidArgument)]
    [InlineData(401, StatusCode.Unauthenticated)]
    [InlineData(403, StatusCode.PermissionDenied)]
    [InlineData(413, StatusCode.ResourceExhausted)]
    [InlineData(429, StatusCode.ResourceExhausted)]
    [InlineData(500, StatusCode.Internal)]
    [InlineData(502, StatusCode.Unavailable)]
    [InlineData(503, StatusCode.Unavailable)]
    [InlineData(504, StatusCode.DeadlineExceeded)]
    [InlineData(422, StatusCode.InvalidArgument)] // another client error: the caller's to fix
    [InlineData(507, StatusCode.Internal)] // another server error
    public void Http_error_statuses_map_to_the_grpc_status_of_the_same_answer(int http, StatusCode grpc)
    {
        Assert.Equal(grpc, GrpcStatusMapping.FromHttpStatus(http, notFound: StatusCode.NotFound));
        Assert.Equal(grpc, GrpcStatusMapping.FromHttpStatus(http, notFound: StatusCode.Unimplemented));
    }

    [Fact]
    public void A_404_means_what_the_caller_says_it_means()
    {
        // The gateway: a path it does not serve (an unknown method). The worker: a model it does not serve.
        Assert.Equal(StatusCode.Unimplemented, GrpcStatusMapping.FromHttpStatus(404, notFound: StatusCode.Unimplemented));
        Assert.Equal(StatusCode.NotFound, GrpcStatusMapping.FromHttpStatus(404, notFound: StatusCode.NotFound));
    }
}
