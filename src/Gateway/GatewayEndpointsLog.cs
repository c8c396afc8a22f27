using Microsoft.Extensions.Logging;

namespace Microsoft.AspNetCore.Builder;

internal static partial class GatewayEndpointsLog
{
    [LoggerMessage(EventId = 710, EventName = "UnexpectedError", Level = LogLevel.Error, Message = "Unexpected error serving {Path}")]
    public static partial void UnexpectedError(ILogger logger, Exception exception, string path);
}
