using System.Security.Cryptography;
using System.Text;
using GpuFleet.Gateway.Routing;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The keyed, chained prefix-block hashes and the keyed tags (no I/O, no clock).</summary>
public sealed class PrefixHasherTests
{
    private const int BlockBytes = 64;
    private static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();

    private static byte[] Text(int blocks, int extra = 0, char fill = 'a')
    {
        // Every block distinct, so that a chain is not accidentally periodic.
        var bytes = new byte[(blocks * BlockBytes) + extra];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(fill + (i / BlockBytes % 20));
        }

        return bytes;
    }

    [Fact]
    public void The_same_input_gives_the_same_chain_also_from_another_instance_with_the_same_key()
    {
        var text = Text(5);
        var a = new PrefixHasher(Key, BlockBytes).Hash("m", text, 100);
        var again = new PrefixHasher(Key, BlockBytes).Hash("m", text, 100);
        var b = new PrefixHasher((byte[])Key.Clone(), BlockBytes).Hash("m", text, 100);

        Assert.Equal(5, a.Length);
        Assert.Equal(a, again);
        Assert.Equal(a, b);
        Assert.Equal(5, a.Distinct().Count());
    }

    [Fact]
    public void The_first_hash_is_the_documented_hmac_of_eight_zero_bytes_and_the_block()
    {
        // h_0 = HMAC-SHA256(modelKey, 0^8 || block_0)[..8], modelKey = HMAC-SHA256(secret, "model-key\0" + model).
        var text = Text(2);
        var hashes = new PrefixHasher(Key, BlockBytes).Hash("qwen", text, 10);
        var modelKey = HMACSHA256.HashData(Key, Encoding.UTF8.GetBytes("model-key\0qwen"));
        byte[] firstInput = [.. new byte[8], .. text.AsSpan(0, BlockBytes)];
        var first = HMACSHA256.HashData(modelKey, firstInput);
        Assert.Equal(BitConverter.ToUInt64(first, 0), hashes[0]);
        byte[] secondInput = [.. first.AsSpan(0, 8), .. text.AsSpan(BlockBytes, BlockBytes)];
        var second = HMACSHA256.HashData(modelKey, secondInput);
        Assert.Equal(BitConverter.ToUInt64(second, 0), hashes[1]);
    }

    [Fact]
    public void Changing_one_block_changes_its_hash_and_every_later_one_but_no_earlier_one()
    {
        var hasher = new PrefixHasher(Key, BlockBytes);
        var original = Text(6);
        var before = hasher.Hash("m", original, 100);
        for (var changed = 0; changed < 6; changed++)
        {
            var edited = (byte[])original.Clone();
            edited[(changed * BlockBytes) + 17] ^= 0x01;
            var after = hasher.Hash("m", edited, 100);
            for (var i = 0; i < 6; i++)
            {
                if (i < changed)
                {
                    Assert.Equal(before[i], after[i]);
                }
                else
                {
                    Assert.NotEqual(before[i], after[i]);
                }
            }
        }
    }

    [Fact]
    public void A_block_hash_depends_on_the_whole_prefix_not_only_on_its_own_bytes()
    {
        // Same block 1, different block 0: block 1's hash differs (a plain per-block hash would be equal).
        var hasher = new PrefixHasher(Key, BlockBytes);
        var a = Text(2);
        var b = (byte[])a.Clone();
        b[3] ^= 0x20;
        Assert.True(a.AsSpan(BlockBytes).SequenceEqual(b.AsSpan(BlockBytes)));
        Assert.NotEqual(hasher.Hash("m", a, 10)[1], hasher.Hash("m", b, 10)[1]);

        // Two identical blocks in a row do not hash alike either.
        var repeated = Enumerable.Repeat((byte)'x', 3 * BlockBytes).ToArray();
        var chain = hasher.Hash("m", repeated, 10);
        Assert.Equal(3, chain.Distinct().Count());
    }

    [Fact]
    public void Another_key_or_another_model_gives_unrelated_hashes()
    {
        var text = Text(4);
        var hashes = new PrefixHasher(Key, BlockBytes).Hash("m", text, 100);
        var otherKey = Key.Select(b => (byte)(b ^ 0x80)).ToArray();
        var byKey = new PrefixHasher(otherKey, BlockBytes).Hash("m", text, 100);
        var byModel = new PrefixHasher(Key, BlockBytes).Hash("m2", text, 100);
        var byCase = new PrefixHasher(Key, BlockBytes).Hash("M", text, 100);
        foreach (var other in new[] { byKey, byModel, byCase })
        {
            Assert.Equal(4, other.Length);
            Assert.Empty(hashes.Intersect(other));
        }
    }

    [Fact]
    public void Only_full_blocks_are_hashed_and_a_trailing_partial_block_changes_nothing()
    {
        var hasher = new PrefixHasher(Key, BlockBytes);
        Assert.Empty(hasher.Hash("m", [], 100));
        Assert.Empty(hasher.Hash("m", Text(0, BlockBytes - 1), 100));
        Assert.Single(hasher.Hash("m", Text(1), 100));
        Assert.Single(hasher.Hash("m", Text(1, BlockBytes - 1), 100));

        var exact = hasher.Hash("m", Text(3), 100);
        var withTail = hasher.Hash("m", Text(3, 10), 100);
        byte[] tailed = [.. Text(3), .. "completely different tail"u8];
        var otherTail = hasher.Hash("m", tailed, 100);
        Assert.Equal(exact, withTail);
        Assert.Equal(exact, otherTail);
    }

    [Fact]
    public void At_most_max_blocks_are_hashed_and_they_are_the_leading_ones()
    {
        var hasher = new PrefixHasher(Key, BlockBytes);
        var text = Text(10);
        var all = hasher.Hash("m", text, 100);
        Assert.Equal(10, all.Length);
        Assert.Equal(all[..4], hasher.Hash("m", text, 4));
        Assert.Empty(hasher.Hash("m", text, 0));
        Assert.Equal(all, hasher.Hash("m", text, 10));
    }

    [Fact]
    public void Tiny_blocks_and_missing_keys_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PrefixHasher(Key, 63));
        Assert.Throws<ArgumentNullException>(() => new PrefixHasher(null!, 1024));
        Assert.Equal(64, new PrefixHasher(Key, 64).BlockBytes);
    }

    [Fact]
    public void Many_models_still_hash_consistently_past_the_model_key_cache()
    {
        var hasher = new PrefixHasher(Key, BlockBytes);
        var text = Text(2);
        var first = Enumerable.Range(0, 1100).Select(i => hasher.Hash($"model-{i}", text, 10)).ToList();
        for (var i = 0; i < 1100; i += 99)
        {
            Assert.Equal(first[i], hasher.Hash($"model-{i}", text, 10));
        }

        Assert.Equal(1100, first.Select(h => h[0]).Distinct().Count());
    }

    [Fact]
    public void Tags_are_fixed_length_lowercase_hex_keyed_and_differ_by_purpose_and_value()
    {
        var hasher = new PrefixHasher(Key, BlockBytes);
        var tags = new[]
        {
            hasher.Tag("session", "alice"),
            hasher.Tag("session", "bob"),
            hasher.Tag("model", "alice"),
            hasher.Tag("session", ""),
            hasher.Tag("session", new string('x', 10_000)),
        };

        Assert.Equal(tags.Length, tags.Distinct().Count());
        foreach (var tag in tags)
        {
            Assert.Equal(24, tag.Length);
            Assert.Matches("^[0-9a-f]{24}$", tag);
        }

        Assert.DoesNotContain("alice", tags[0], StringComparison.OrdinalIgnoreCase);
        Assert.Equal(tags[0], hasher.Tag("session", "alice"));
        Assert.Equal(tags[0], new PrefixHasher(Key, 1024).Tag("session", "alice")); // independent of the block size
        Assert.NotEqual(tags[0], new PrefixHasher([.. Key.Reverse()], BlockBytes).Tag("session", "alice"));

        // Not a plain (unkeyed) hash of the value either.
        var plain = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("session\0alice"))[..12]);
        Assert.NotEqual(plain, tags[0]);
    }
}
