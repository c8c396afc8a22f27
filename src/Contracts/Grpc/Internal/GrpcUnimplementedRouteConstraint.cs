using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>
/// Lets the unimplemented catch-all match only gRPC requests, so it never swallows an ordinary two-segment HTTP
/// route (say POST /v1/completions) of the same application.
/// </summary>
internal sealed class GrpcUnimplementedRouteConstraint : IRouteConstraint
{
    public bool Match(HttpContext? httpContext, IRouter? route, string routeKey, RouteValueDictionary values, RouteDirection routeDirection) =>
        routeDirection == RouteDirection.IncomingRequest && GrpcProtocol.IsGrpcContentType(httpContext?.Request.ContentType);
}
