using System.Buffers;

namespace GpuFleet.Contracts;

/// <summary>
/// Reads a request body whole, as the gateway (to inspect and forward it) and the worker (to parse it) both do: a body with
/// a declared length into one exact buffer, filled in place; a chunked one through a pooled chunk, stopped as soon as it
/// passes the limit. Each caller checks a declared length against its limit first and maps failures to its own API's
/// errors: a stream that ends early throws <see cref="IOException"/> (<see cref="EndOfStreamException"/> when shorter than
/// its declared length), or the server's own exception.
/// </summary>
public static class RequestBodyReader
{
    private const int ChunkBytes = 16 * 1024;

    /// <summary>The whole body; null when a body without a declared length grows past <paramref name="maxBytes"/>.</summary>
    public static async Task<byte[]?> ReadAsync(Stream body, long? contentLength, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (contentLength is { } length)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(length, maxBytes);
            var exact = new byte[length];
            await body.ReadExactlyAsync(exact, cancellationToken);
            return exact;
        }

        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    return null;
                }

                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        return buffer.ToArray();
    }
}
