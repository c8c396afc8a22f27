namespace GpuFleet.Contracts.Grpc;

/// <summary>Limits of a <see cref="GrpcCallInvoker"/>.</summary>
public sealed class GrpcClientOptions
{
    /// <summary>Largest response message accepted, in bytes; a larger one fails the call with RESOURCE_EXHAUSTED. Default 4 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = GrpcServerOptions.DefaultMaxReceiveMessageSize;

    /// <summary>Largest request message sent, in bytes; null (the default) means no limit beyond the 4 GiB framing limit.</summary>
    public int? MaxSendMessageSize { get; set; }
}
