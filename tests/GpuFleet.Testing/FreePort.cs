using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace GpuFleet.Testing;

/// <summary>Free TCP ports on 127.0.0.1 for servers that tests start.</summary>
public static class FreePort
{
    // The OS may hand a just-released port out again at once; two servers of one test run must never share one.
    private static readonly ConcurrentDictionary<int, bool> HandedOut = new();

    public static int Next()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            if (HandedOut.TryAdd(port, true))
            {
                return port;
            }
        }
    }
}
