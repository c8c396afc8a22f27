using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Contracts;

/// <summary>
/// The one mapping from an HTTP error status to the gRPC status a gRPC caller gets for the same answer: the gateway's
/// own refusals and the worker's API errors on Generate both go through it, so a refusal reads the same over either API.
/// </summary>
public static class GrpcStatusMapping
{
    /// <summary>
    /// The gRPC status for <paramref name="httpStatus"/>. A 404 means something different in each process, so the caller
    /// says what it means: <paramref name="notFound"/> (the gateway's is a path it does not serve, UNIMPLEMENTED for a
    /// gRPC method; the worker's a model it does not serve, NOT_FOUND).
    /// </summary>
    public static StatusCode FromHttpStatus(int httpStatus, StatusCode notFound) => httpStatus switch
    {
        StatusCodes.Status400BadRequest => StatusCode.InvalidArgument,
        StatusCodes.Status401Unauthorized => StatusCode.Unauthenticated,
        StatusCodes.Status403Forbidden => StatusCode.PermissionDenied,
        StatusCodes.Status404NotFound => notFound,
        StatusCodes.Status413PayloadTooLarge or StatusCodes.Status429TooManyRequests => StatusCode.ResourceExhausted,
        StatusCodes.Status502BadGateway or StatusCodes.Status503ServiceUnavailable => StatusCode.Unavailable,
        StatusCodes.Status504GatewayTimeout => StatusCode.DeadlineExceeded,
        // Any other client error is the caller's to fix; anything else is the server's failure.
        >= 400 and < 500 => StatusCode.InvalidArgument,
        _ => StatusCode.Internal,
    };
}
