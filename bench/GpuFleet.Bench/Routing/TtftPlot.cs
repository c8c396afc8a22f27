using System.IO.Compression;
using System.Text;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// TTFT p90 against load, one line per policy, as a PNG written by hand (zlib from the framework, no package): a white
/// canvas, a logarithmic TTFT axis (the policies differ by orders of magnitude) with grid lines at 1, 2 and 5 times each
/// power of ten, a tick per load, labels in <see cref="PixelFont"/> and a legend naming each policy's colour.
/// </summary>
internal static class TtftPlot
{
    private const int Width = 980;
    private const int Height = 520;
    private const int Left = 90;
    private const int Right = 300;
    private const int Top = 60;
    private const int Bottom = 70;
    private const int TextScale = 2;

    private static readonly (byte R, byte G, byte B) Black = (0, 0, 0);
    private static readonly (byte R, byte G, byte B) Grid = (225, 225, 225);

    private static readonly (byte R, byte G, byte B)[] Colours =
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (0, 0, 0),
    ];

    /// <summary>Draws the runs' TTFT p90 (modelled seconds) against their load; <paramref name="title"/> heads the picture.</summary>
    public static void Write(string path, IReadOnlyList<RunSummary> runs, string title = "ttft p90 against load, mix workload, simulated fleet")
    {
        ArgumentNullException.ThrowIfNull(runs);
        var pixels = new byte[Height * Width * 3];
        Array.Fill(pixels, (byte)255);
        var loads = runs.Select(r => r.Load).Distinct().Order().ToList();
        var values = runs.Select(r => r.TtftP90).Where(v => v > 0 && !double.IsNaN(v)).DefaultIfEmpty(1).ToList();
        var (low, high) = (Math.Floor(Math.Log10(values.Min())), Math.Ceiling(Math.Log10(values.Max())));
        high = Math.Max(high, low + 1);
        double minLoad = loads.Count > 0 ? loads[0] : 0, maxLoad = loads.Count > 1 ? loads[^1] : minLoad + 1;
        int X(double load) => Left + (int)((load - minLoad) / (maxLoad - minLoad) * (Width - Left - Right));
        int Y(double ttft) => Height - Bottom - (int)((Math.Log10(ttft) - low) / (high - low) * (Height - Top - Bottom));
        void Text(string text, int x, int y, (byte R, byte G, byte B) colour) =>
            PixelFont.Draw(text, x, y, TextScale, (px, py) => Box(pixels, px, py, 1, 1, colour));
        const int TextHeight = PixelFont.GlyphHeight * TextScale;

        Text(title, Left, 8, Black);
        for (var decade = low; decade < high + 0.5; decade++)
        {
            foreach (var step in new[] { 1.0, 2.0, 5.0 })
            {
                var value = step * Math.Pow(10, decade);
                if (Math.Log10(value) > high + 1e-9)
                {
                    continue;
                }

                var y = Y(value);
                Line(pixels, Left, y, Width - Right, y, Grid);
                Line(pixels, Left - 6, y, Left, y, Black);
                var label = value.ToString(value < 1 ? "0.##" : "0", System.Globalization.CultureInfo.InvariantCulture) + "s";
                Text(label, Left - 10 - PixelFont.Measure(label, TextScale), y - (TextHeight / 2), Black);
            }
        }

        Line(pixels, Left, Height - Bottom, Width - Right, Height - Bottom, Black);
        Line(pixels, Left, Height - Bottom, Left, Top, Black);
        foreach (var load in loads)
        {
            Line(pixels, X(load), Height - Bottom, X(load), Height - Bottom + 6, Black);
            var label = load.ToString("P0", System.Globalization.CultureInfo.InvariantCulture).Replace(" ", "", StringComparison.Ordinal);
            Text(label, X(load) - (PixelFont.Measure(label, TextScale) / 2), Height - Bottom + 12, Black);
        }

        Text("load (share of fleet capacity)", Left, Height - Bottom + 40, Black);
        Text("ttft p90 (modelled s, log)", 8, Top - 24, Black);

        var policies = runs.Select(r => r.Policy).Distinct().ToList();
        for (var p = 0; p < policies.Count; p++)
        {
            var colour = Colours[p % Colours.Length];
            var points = runs.Where(r => r.Policy == policies[p] && r.TtftP90 > 0).OrderBy(r => r.Load).Select(r => (X(r.Load), Y(r.TtftP90))).ToList();
            for (var i = 1; i < points.Count; i++)
            {
                Line(pixels, points[i - 1].Item1, points[i - 1].Item2, points[i].Item1, points[i].Item2, colour, thick: true);
            }

            foreach (var (x, y) in points)
            {
                Box(pixels, x - 3, y - 3, 7, 7, colour);
            }

            var legendY = Top + (p * (TextHeight + 10));
            Box(pixels, Width - Right + 20, legendY, 14, 14, colour);
            Text(policies[p], Width - Right + 42, legendY, Black);
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
