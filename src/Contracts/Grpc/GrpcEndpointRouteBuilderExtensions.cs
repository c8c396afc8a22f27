using System.Runtime.CompilerServices;
using Google.Protobuf;
using GpuFleet.Contracts.Grpc.Internal;
using GpuFleet.Contracts.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace GpuFleet.Contracts.Grpc;

/// <summary>
/// Maps gRPC methods onto ASP.NET Core endpoints. Serve them on an HTTP/2-only Kestrel endpoint: Kestrel cannot
/// offer cleartext HTTP/2 (h2c) and HTTP/1.1 on one port. Limits come from <see cref="GrpcServerOptions"/>.
/// </summary>
public static class GrpcEndpointRouteBuilderExtensions
{
    /// <summary>The route builders that already have the unimplemented catch-all (it must be added once per builder).</summary>
    private static readonly ConditionalWeakTable<IEndpointRouteBuilder, object> CatchAllAdded = [];

    /// <summary>Maps a unary method, e.g. "/grpc.health.v1.Health/Check".</summary>
    public static IEndpointConventionBuilder MapGrpcUnary<TRequest, TResponse>(
        this IEndpointRouteBuilder endpoints,
        string fullMethod,
        MessageParser<TRequest> requestParser,
        Func<TRequest, GrpcServerCallContext, Task<TResponse>> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(handler);
        var options = ResolveOptions(endpoints);
        return Map(endpoints, fullMethod, requestParser, options, async (request, context) =>
        {
            var response = await handler(request, context).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"The handler of {fullMethod} returned no response message.");

            // A response computed past the deadline or after the client left is not sent (the status says why).
            context.CancellationToken.ThrowIfCancellationRequested();
            await GrpcMessageFraming.WriteAsync(
                context.HttpContext.Response.BodyWriter, response, options.MaxSendMessageSize, context.CancellationToken).ConfigureAwait(false);
        });
    }

    /// <summary>Maps a server-streaming method; the handler writes any number of messages, one at a time.</summary>
    public static IEndpointConventionBuilder MapGrpcServerStreaming<TRequest, TResponse>(
        this IEndpointRouteBuilder endpoints,
        string fullMethod,
        MessageParser<TRequest> requestParser,
        Func<TRequest, IGrpcStreamWriter<TResponse>, GrpcServerCallContext, Task> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(handler);
        var options = ResolveOptions(endpoints);
        return Map(endpoints, fullMethod, requestParser, options, async (request, context) =>
        {
            var writer = new GrpcServerStreamWriter<TResponse>(context.HttpContext.Response, options.MaxSendMessageSize, context.CancellationToken);
            try
            {
                await handler(request, writer, context).ConfigureAwait(false);
            }
            finally
            {
                writer.Complete();
            }
        });
    }

    /// <summary>Maps the standard grpc.health.v1.Health service (Check and Watch), answered from <paramref name="health"/>.</summary>
    public static IEndpointRouteBuilder MapGrpcHealthService(this IEndpointRouteBuilder endpoints, GrpcHealthService health)
    {
        ArgumentNullException.ThrowIfNull(health);
        endpoints.MapGrpcUnary<HealthCheckRequest, HealthCheckResponse>(GrpcHealthService.CheckMethod, HealthCheckRequest.Parser, health.CheckAsync);
        endpoints.MapGrpcServerStreaming<HealthCheckRequest, HealthCheckResponse>(GrpcHealthService.WatchMethod, HealthCheckRequest.Parser, health.WatchAsync);
        return endpoints;
    }

    private static IEndpointConventionBuilder Map<TRequest>(
        IEndpointRouteBuilder endpoints,
        string fullMethod,
        MessageParser<TRequest> requestParser,
        GrpcServerOptions options,
        Func<TRequest, GrpcServerCallContext, Task> invoke)
        where TRequest : IMessage<TRequest>
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(requestParser);
        ValidateFullMethod(fullMethod);

        var services = endpoints.ServiceProvider;
        var timeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System;
        var logger = CreateLogger(services);
        var callHandler = new GrpcServerCallHandler<TRequest>(fullMethod, requestParser, invoke, options, timeProvider, logger);

        AddUnimplementedCatchAll(endpoints, logger);
        return endpoints.MapPost(fullMethod, (RequestDelegate)callHandler.HandleAsync).WithDisplayName("gRPC " + fullMethod);
    }

    /// <summary>Answers a gRPC request to any method nobody mapped with UNIMPLEMENTED, as gRPC clients expect (not 404).</summary>
    private static void AddUnimplementedCatchAll(IEndpointRouteBuilder endpoints, ILogger logger)
    {
        lock (CatchAllAdded)
        {
            if (CatchAllAdded.TryGetValue(endpoints, out _))
            {
                return;
            }

            CatchAllAdded.Add(endpoints, new object());
        }

        var pattern = RoutePatternFactory.Parse(
            "/{service}/{method}", defaults: null, parameterPolicies: new { service = new GrpcUnimplementedRouteConstraint() });
        endpoints.Map(pattern, http =>
            {
                var method = http.Request.Path.Value ?? string.Empty;
                if (!GrpcServerResponses.TryAccept(http, method, logger, out _))
                {
                    return Task.CompletedTask;
                }

                GrpcServerLog.MethodUnimplemented(logger, method);
                GrpcServerResponses.WriteStatus(http, GrpcStatusCode.Unimplemented, $"Method {method} is unimplemented.", null);
                return Task.CompletedTask;
            })
            .WithDisplayName("gRPC unimplemented")
            .WithMetadata(new HttpMethodMetadata([HttpMethods.Post]))
            // Last resort: every mapped method and every other route of the application wins over it.
            .Add(builder => ((RouteEndpointBuilder)builder).Order = int.MaxValue);
    }

    private static GrpcServerOptions ResolveOptions(IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetService<IOptions<GrpcServerOptions>>()?.Value ?? new GrpcServerOptions();
        if (options.MaxReceiveMessageSize <= 0)
        {
            throw new OptionsValidationException(
                nameof(GrpcServerOptions), typeof(GrpcServerOptions),
                [$"{nameof(GrpcServerOptions)}.{nameof(GrpcServerOptions.MaxReceiveMessageSize)} must be positive, not {options.MaxReceiveMessageSize}."]);
        }

        if (options.MaxSendMessageSize is <= 0)
        {
            throw new OptionsValidationException(
                nameof(GrpcServerOptions), typeof(GrpcServerOptions),
                [$"{nameof(GrpcServerOptions)}.{nameof(GrpcServerOptions.MaxSendMessageSize)} must be positive or null, not {options.MaxSendMessageSize}."]);
        }

        return options;
    }

    private static ILogger CreateLogger(IServiceProvider services) =>
        (services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger("GpuFleet.Contracts.Grpc.Server");

    private static void ValidateFullMethod(string fullMethod)
    {
        ArgumentException.ThrowIfNullOrEmpty(fullMethod);
        var slash = fullMethod.IndexOf('/', 1);
        if (fullMethod[0] != '/' || slash <= 1 || slash == fullMethod.Length - 1 || fullMethod.IndexOf('/', slash + 1) >= 0)
        {
            throw new ArgumentException($"A gRPC method name has the form \"/package.Service/Method\"; got \"{fullMethod}\".", nameof(fullMethod));
        }
    }
}
