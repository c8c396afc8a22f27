using GpuFleet.Contracts;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The two small wire formats between gateway and worker: x-gpufleet-prefix-blocks and the usage report.</summary>
public sealed class WireFormatTests
{
    [Fact]
    public void Prefix_block_header_round_trips()
    {
        ulong[] hashes = [0, 1, 0xdeadbeefcafef00d, ulong.MaxValue];
        var header = PrefixBlockHeader.Format(1024, 5000, hashes);
        Assert.Equal("v1;1024;5000;0000000000000000,0000000000000001,deadbeefcafef00d,ffffffffffffffff", header);

        Assert.True(PrefixBlockHeader.TryParse(header, out var blockBytes, out var totalBytes, out var parsed));
        Assert.Equal(1024, blockBytes);
        Assert.Equal(5000, totalBytes);
        Assert.Equal(hashes, parsed);

        Assert.True(PrefixBlockHeader.TryParse(PrefixBlockHeader.Format(64, 10, []), out _, out var total, out var none));
        Assert.Equal(10, total);
        Assert.Empty(none);
    }

    [Fact]
    public void Prefix_block_header_round_trips_the_largest_chain_and_truncates_a_longer_one()
    {
        var many = Enumerable.Range(0, PrefixBlockHeader.MaxBlocks + 10).Select(i => (ulong)i * 0x9E3779B97F4A7C15UL).ToArray();
        var header = PrefixBlockHeader.Format(64, 64L * many.Length, many);
        Assert.True(header.Length < 20 * 1024, $"{header.Length} chars");
        Assert.True(PrefixBlockHeader.TryParse(header, out _, out _, out var parsed));
        Assert.Equal(many.Take(PrefixBlockHeader.MaxBlocks), parsed);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("v2;1024;2048;0000000000000001")]
    [InlineData("V1;1024;2048;0000000000000001")]
    [InlineData("v1;1024;2048")]
    [InlineData("v1;1024;2048;0000000000000001;extra")]
    [InlineData("v1;0;2048;0000000000000001")]
    [InlineData("v1;-1;2048;0000000000000001")]
    [InlineData("v1;+1024;2048;0000000000000001")]
    [InlineData("v1; 1024;2048;0000000000000001")]
    [InlineData("v1;1024;0;")]
    [InlineData("v1;1024;x;0000000000000001")]
    [InlineData("v1;1024;2048;000000000000000g")]
    [InlineData("v1;1024;2048;000000000000001")]
    [InlineData("v1;1024;2048;00000000000000001")]
    [InlineData("v1;1024;2048;0x00000000000001")]
    [InlineData("v1;1024;2048;0000000000000001,")]
    [InlineData("v1;1024;2048;,0000000000000001")]
    [InlineData("v1;1024;2048;0000000000000001 ")]
    [InlineData("v1;1024;2048;-000000000000001")]
    [InlineData("v1;1024;2047;0000000000000001,0000000000000002")] // two full blocks need 2048 bytes
    [InlineData("v1;99999999999;2048;0000000000000001")]
    public void Malformed_prefix_block_headers_are_rejected(string? header)
    {
        Assert.False(PrefixBlockHeader.TryParse(header, out _, out _, out var hashes));
        Assert.Empty(hashes);
    }

    [Fact]
    public void A_prefix_block_header_with_too_many_blocks_is_rejected()
    {
        var items = string.Join(',', Enumerable.Repeat("0123456789abcdef", PrefixBlockHeader.MaxBlocks + 1));
        Assert.False(PrefixBlockHeader.TryParse($"v1;64;{64 * (PrefixBlockHeader.MaxBlocks + 1)};{items}", out _, out _, out _));
        var exactly = string.Join(',', Enumerable.Repeat("0123456789abcdef", PrefixBlockHeader.MaxBlocks));
        Assert.True(PrefixBlockHeader.TryParse($"v1;64;{64 * PrefixBlockHeader.MaxBlocks};{exactly}", out _, out _, out var parsed));
        Assert.Equal(PrefixBlockHeader.MaxBlocks, parsed.Length);
    }

    [Fact]
    public void Block_ends_are_monotone_capped_at_the_prompt_and_the_last_full_block_of_an_exact_prompt_ends_it()
    {
        foreach (var (blockBytes, totalBytes, promptTokens) in new (int, long, int)[] { (1024, 10_000, 2_400), (1024, 1024 * 8, 2_000), (64, 6_400, 1_601), (1024, 1500, 10), (1024, 1024, 1) })
        {
            var blocks = (int)(totalBytes / blockBytes);
            var previous = 0;
            for (var i = 0; i < blocks + 3; i++)
            {
                var end = PrefixBlockHeader.TokenEnd(i, blockBytes, totalBytes, promptTokens);
                Assert.InRange(end, Math.Max(1, previous), promptTokens);
                previous = end;
            }

            if (totalBytes % blockBytes == 0)
            {
                Assert.Equal(promptTokens, PrefixBlockHeader.TokenEnd(blocks - 1, blockBytes, totalBytes, promptTokens));
            }

            // Never more than proportional plus one token, never less.
            for (var i = 0; i < blocks; i++)
            {
                var exact = (double)(i + 1) * blockBytes * promptTokens / totalBytes;
                Assert.InRange(PrefixBlockHeader.TokenEnd(i, blockBytes, totalBytes, promptTokens), exact, exact + 1);
            }
        }

        Assert.Equal(0, PrefixBlockHeader.TokenEnd(0, 1024, 4096, 0));
    }

    [Fact]
    public void A_block_that_ends_exactly_on_a_token_boundary_ends_at_that_token()
    {
        // Block 6 of 25 equal blocks of a 25-token prompt covers exactly 7 tokens: 7 * 1024 / 25600 * 25 = 7.
        Assert.Equal(7, PrefixBlockHeader.TokenEnd(6, 1024, 25_600, 25));
        Assert.Equal(14, PrefixBlockHeader.TokenEnd(13, 1024, 25_600, 25));

        for (long total = 1024; total <= 200 * 1024; total += 1024)
        {
            for (var tokens = 1; tokens <= 300; tokens += 7)
            {
                for (var i = 0; (i + 1) * 1024L <= total; i++)
                {
                    var exact = (int)Math.Min(tokens, (((i + 1) * 1024L * tokens) + total - 1) / total);
                    Assert.Equal(exact, PrefixBlockHeader.TokenEnd(i, 1024, total, tokens));
                }
            }
        }
    }

    [Fact]
    public void Usage_report_round_trips_and_totals()
    {
        var report = new UsageReport(1234, 56, 1000);
        Assert.Equal("prompt=1234;completion=56;cached=1000", report.ToString());
        Assert.True(UsageReport.TryParse(report.ToString(), out var parsed));
        Assert.Equal(report, parsed);
        Assert.Equal(1290, parsed.TotalTokens);

        Assert.True(UsageReport.TryParse("cached=0;completion=0;prompt=0", out var zero));
        Assert.Equal(default, zero);
        Assert.True(UsageReport.TryParse(new UsageReport(int.MaxValue, 0, 0).ToString(), out var big));
        Assert.Equal(int.MaxValue, big.PromptTokens);
        Assert.Equal(": x-gpufleet-usage ", UsageReport.CommentPrefix);
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("prompt=1;completion=2")]
    [InlineData("prompt=1;cached=3")]
    [InlineData("prompt=1;completion=2;cached=")]
    [InlineData("prompt=1;completion=2;cached=-3")]
    [InlineData("prompt=1;completion=2;cached=+3")]
    [InlineData("prompt=1;completion=2;cached= 3")]
    [InlineData("prompt=1;completion=2;cached=3 ")]
    [InlineData("prompt=1;completion=2;cached=3\r")]
    [InlineData("prompt=1;completion=2;cached=3;")]
    [InlineData("prompt=1;completion=2;cached=1.5")]
    [InlineData("prompt=1;completion=2;cached=99999999999")]
    [InlineData("prompt=x;completion=2;cached=3")]
    [InlineData("=1;completion=2;cached=3")]
    [InlineData("prompt1;completion=2;cached=3")]
    [InlineData("prompt=1,completion=2,cached=3")]
    public void Usage_report_rejects_garbage(string text)
    {
        Assert.False(UsageReport.TryParse(text, out var report));
        Assert.Equal(default, report);
    }
}
