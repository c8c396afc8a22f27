using System.Text;
using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Tests.Engine;

public sealed class TextAssemblerTests
{
    [Fact]
    public void Multi_byte_characters_split_across_tokens_are_released_whole()
    {
        var assembler = new TextAssembler([]);
        var rocket = Encoding.UTF8.GetBytes("🚀");

        Assert.Equal(string.Empty, assembler.Append(rocket.AsSpan(0, 1)));
        Assert.Equal(string.Empty, assembler.Append(rocket.AsSpan(1, 2)));
        Assert.Equal("🚀!", assembler.Append([rocket[3], (byte)'!']));
        Assert.Equal(string.Empty, assembler.Flush());
    }

    [Fact]
    public void Possible_stop_prefix_is_held_then_released_when_it_is_not_a_stop()
    {
        var assembler = new TextAssembler(["END"]);

        Assert.Equal("hello ", assembler.Append("hello E"u8));
        Assert.Equal(string.Empty, assembler.Append("N"u8));
        Assert.Equal("ENough", assembler.Append("ough"u8));
        Assert.False(assembler.Stopped);
    }

    [Fact]
    public void Stop_sequence_across_tokens_cuts_the_text_before_it()
    {
        var assembler = new TextAssembler(["</answer>", "STOP"]);

        Assert.Equal("42 ", assembler.Append("42 </ans"u8));
        Assert.Equal(string.Empty, assembler.Append("wer> trailing"u8));
        Assert.True(assembler.Stopped);
        Assert.Equal(string.Empty, assembler.Append("more"u8));
        Assert.Equal(string.Empty, assembler.Flush());
    }

    [Fact]
    public void Earliest_stop_wins_and_held_text_is_flushed_at_the_end()
    {
        var stopped = new TextAssembler(["bb", "a"]);
        Assert.Equal("x", stopped.Append("xabb"u8));

        var held = new TextAssembler(["zzz"]);
        Assert.Equal("abc", held.Append("abczz"u8));
        Assert.Equal("zz", held.Flush());
    }

    [Fact]
    public void Incomplete_character_at_the_end_becomes_a_replacement_character()
    {
        var assembler = new TextAssembler([]);
        assembler.Append([0xE2, 0x82]);

        Assert.Equal("\uFFFD", assembler.Flush());
    }
}
