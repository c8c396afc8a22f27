namespace GpuFleet.Contracts.Grpc;

/// <summary>Limits of the gRPC server endpoints; configure with <c>services.Configure&lt;GrpcServerOptions&gt;(...)</c>.</summary>
public sealed class GrpcServerOptions
{
    /// <summary>The default receive limit: 4 MiB, as in grpc-dotnet, grpc-java and grpc-go.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>Largest request message accepted, in bytes; a larger one ends the call with RESOURCE_EXHAUSTED. Default 4 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = DefaultMaxReceiveMessageSize;

    /// <summary>Largest response message sent, in bytes; null (the default) means no limit beyond the 4 GiB framing limit.</summary>
    public int? MaxSendMessageSize { get; set; }
}
