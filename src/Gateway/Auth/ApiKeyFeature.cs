namespace GpuFleet.Gateway.Auth;

/// <summary>The authenticated key of a request, set on <see cref="Microsoft.AspNetCore.Http.HttpContext.Features"/> by <see cref="ApiKeyAuthenticationMiddleware"/>.</summary>
internal sealed class ApiKeyFeature(ApiKeyIdentity key)
{
    public ApiKeyIdentity Key { get; } = key ?? throw new ArgumentNullException(nameof(key));
}
