namespace GpuFleet.Bench.Routing;

/// <summary>
/// A 5x7 bitmap font for the plot's labels (lower-case letters, digits and a little punctuation; upper case is drawn as
/// lower case), so that the PNG carries its own axis values and legend without a graphics package.
/// </summary>
internal static class PixelFont
{
    public const int GlyphWidth = 5;
    public const int GlyphHeight = 7;

    // Seven rows of five pixels per glyph, '#' set.
    private static readonly Dictionary<char, string> Glyphs = new()
    {
        ['0'] = ".###.#...##..###.#.###..##...#.###.",
        ['1'] = "..#...##....#....#....#....#...###.",
        ['2'] = ".###.#...#....#...#...#...#...#####",
        ['3'] = "#####...#...#.....#.....##...#.###.",
        ['4'] = "...#...##..#.#.#..#.#####...#....#.",
        ['5'] = "######....####.....#....##...#.###.",
        ['6'] = "..##..#...#....####.#...##...#.###.",
        ['7'] = "#####....#...#...#...#....#....#...",
        ['8'] = ".###.#...##...#.###.#...##...#.###.",
        ['9'] = ".###.#...##...#.####....#...#..##..",
        ['.'] = "..........................##...##..",
        [','] = ".....................##....#...#...",
        [':'] = "......##...##........##...##.......",
        ['%'] = "##...##..#...#...#...#...#..##...##",
        ['-'] = "...............#####...............",
        ['('] = "...#...#...#....#....#.....#.....#.",
        [')'] = ".#.....#.....#....#....#...#...#...",
        ['/'] = "....#...#....#...#...#....#...#....",
        [' '] = "...................................",
        ['a'] = "...........###.....#.#####...#.####",
        ['b'] = "#....#....#.##.##..##...##...#####.",
        ['c'] = "...........###.#....#....#...#.###.",
        ['d'] = "....#....#.##.##..###...##...#.####",
        ['e'] = "...........###.#...#######.....###.",
        ['f'] = "..##..#..#.#...###...#....#....#...",
        ['g'] = "......#####...##...#.####....#.###.",
        ['h'] = "#....#....#.##.##..##...##...##...#",
        ['i'] = "..#........##....#....#....#...###.",
        ['j'] = "...#........##....#....#.#..#..##..",
        ['k'] = "#....#....#..#.#.#..##...#.#..#..#.",
        ['l'] = ".##....#....#....#....#....#...###.",
        ['m'] = "..........##.#.#.#.##.#.##...##...#",
        ['n'] = "..........#.##.##..##...##...##...#",
        ['o'] = "...........###.#...##...##...#.###.",
        ['p'] = "..........####.#...#####.#....#....",
        ['q'] = "...........##.##..##.####....#....#",
        ['r'] = "..........#.##.##..##....#....#....",
        ['s'] = "...........###.#.....###.....#####.",
        ['t'] = ".#....#...###...#....#....#..#..##.",
        ['u'] = "..........#...##...##...##..##.##.#",
        ['v'] = "..........#...##...##...#.#.#...#..",
        ['w'] = "..........#...##...##.#.##.#.#.#.#.",
        ['x'] = "..........#...#.#.#...#...#.#.#...#",
        ['y'] = "..........#...##...#.####....#.###.",
        ['z'] = "..........#####...#...#...#...#####",

    };

    /// <summary>Width in pixels of <paramref name="text"/> drawn at <paramref name="scale"/>.</summary>
    public static int Measure(string text, int scale) => text.Length * (GlyphWidth + 1) * scale;

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y); <paramref name="set"/> paints one pixel.</summary>
    public static void Draw(string text, int x, int y, int scale, Action<int, int> set)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(set);
        foreach (var c in text)
        {
            var glyph = Glyphs.GetValueOrDefault(char.ToLowerInvariant(c), Glyphs['-']);
            for (var row = 0; row < GlyphHeight; row++)
            {
                for (var column = 0; column < GlyphWidth; column++)
                {
                    if (glyph[(row * GlyphWidth) + column] == '#')
                    {
                        for (var dy = 0; dy < scale; dy++)
                        {
                            for (var dx = 0; dx < scale; dx++)
                            {
                                set(x + (column * scale) + dx, y + (row * scale) + dy);
                            }
                        }
                    }
                }
            }

            x += (GlyphWidth + 1) * scale;
        }
    }
}
