using System.IO.Compression;
using System.Text;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// TTFT p90 against load, one line per policy, as a PNG written by hand (zlib from the framework, no package): a white
/// canvas, axes with a tick per load and per 5 s of TTFT, and a legend of colour swatches whose order is the policies'
/// order in docs/benchmarks.md. Labels are left to the document; the picture carries the shape.
/// </summary>
internal static class TtftPlot
{
    private const int Width = 640;
    private const int Height = 400;
    private const int Margin = 40;

    private static readonly (byte R, byte G, byte B)[] Colours =
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (0, 0, 0),
    ];

    public static void Write(string path, IReadOnlyList<RunSummary> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var pixels = new byte[Height * Width * 3];
        Array.Fill(pixels, (byte)255);
        var loads = runs.Select(r => r.Load).Distinct().Order().ToList();
        var maxTtft = Math.Max(1, runs.Where(r => !double.IsNaN(r.TtftP90)).Select(r => r.TtftP90).DefaultIfEmpty(1).Max() * 1.1);
        double minLoad = loads.Count > 0 ? loads[0] : 0, maxLoad = loads.Count > 1 ? loads[^1] : minLoad + 1;
        int X(double load) => Margin + (int)((load - minLoad) / (maxLoad - minLoad) * (Width - (2 * Margin)));
        int Y(double ttft) => Height - Margin - (int)(ttft / maxTtft * (Height - (2 * Margin)));

        Line(pixels, Margin, Height - Margin, Width - Margin, Height - Margin, (0, 0, 0));
        Line(pixels, Margin, Height - Margin, Margin, Margin, (0, 0, 0));
        foreach (var load in loads)
        {
            Line(pixels, X(load), Height - Margin, X(load), Height - Margin + 6, (0, 0, 0));
        }

        for (var s = 5.0; s < maxTtft; s += 5)
        {
            Line(pixels, Margin - 6, Y(s), Margin, Y(s), (0, 0, 0));
        }

        var policies = runs.Select(r => r.Policy).Distinct().ToList();
        for (var p = 0; p < policies.Count; p++)
        {
            var colour = Colours[p % Colours.Length];
            var points = runs.Where(r => r.Policy == policies[p] && !double.IsNaN(r.TtftP90)).OrderBy(r => r.Load).Select(r => (X(r.Load), Y(r.TtftP90))).ToList();
            for (var i = 1; i < points.Count; i++)
            {
                Line(pixels, points[i - 1].Item1, points[i - 1].Item2, points[i].Item1, points[i].Item2, colour, thick: true);
            }

            foreach (var (x, y) in points)
            {
                Box(pixels, x - 3, y - 3, 7, 7, colour);
            }

            Box(pixels, Width - Margin - 100, Margin + (p * 14), 10, 10, colour);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllBytes(path, Encode(pixels));
    }

    private static void Line(byte[] pixels, int x0, int y0, int x1, int y1, (byte R, byte G, byte B) colour, bool thick = false)
    {
        var steps = Math.Max(Math.Abs(x1 - x0), Math.Abs(y1 - y0));
        for (var i = 0; i <= steps; i++)
        {
            var x = x0 + (int)Math.Round((double)(x1 - x0) * i / Math.Max(1, steps));
            var y = y0 + (int)Math.Round((double)(y1 - y0) * i / Math.Max(1, steps));
            Box(pixels, x, y, thick ? 2 : 1, thick ? 2 : 1, colour);
        }
    }

    private static void Box(byte[] pixels, int x, int y, int w, int h, (byte R, byte G, byte B) colour)
    {
        for (var yy = Math.Max(0, y); yy < Math.Min(Height, y + h); yy++)
        {
            for (var xx = Math.Max(0, x); xx < Math.Min(Width, x + w); xx++)
            {
                var i = ((yy * Width) + xx) * 3;
                (pixels[i], pixels[i + 1], pixels[i + 2]) = colour;
            }
        }
    }

    /// <summary>PNG: signature, IHDR (8-bit RGB), one IDAT of zlib-compressed scanlines (filter 0), IEND.</summary>
    private static byte[] Encode(byte[] rgb)
    {
        using var png = new MemoryStream();
        png.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var header = new byte[13];
        BigEndian(header, 0, Width);
        BigEndian(header, 4, Height);
        header[8] = 8; // bit depth
        header[9] = 2; // truecolour
        Chunk(png, "IHDR", header);
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            for (var y = 0; y < Height; y++)
            {
                zlib.WriteByte(0);
                zlib.Write(rgb, y * Width * 3, Width * 3);
            }
        }

        Chunk(png, "IDAT", raw.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        var length = new byte[4];
        BigEndian(length, 0, data.Length);
        png.Write(length);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typed);
        var crc = new byte[4];
        BigEndian(crc, 0, (int)Crc32(typed));
        png.Write(crc);
    }

    private static void BigEndian(byte[] buffer, int offset, int value)
    {
        buffer[offset] = (byte)(value >> 24);
        buffer[offset + 1] = (byte)(value >> 16);
        buffer[offset + 2] = (byte)(value >> 8);
        buffer[offset + 3] = (byte)value;
    }

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
            }
        }

        return ~crc;
    }
}
