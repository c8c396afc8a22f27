using System.Text.Json;
using GpuFleet.Worker.Chat;

namespace GpuFleet.Worker.Tests.Chat;

public sealed class TempFuzzTests
{
    [Fact]
    public void Fuzz()
    {
        var failures = new List<string>();
        foreach (var line in File.ReadLines("/tmp/qfuzz/cases.jsonl"))
        {
            using var doc = JsonDocument.Parse(line);
            var input = doc.RootElement.GetProperty("input").GetString()!;
            var expected = doc.RootElement.GetProperty("expected").GetString();
            var error = doc.RootElement.GetProperty("error").GetString();
            string? actual = null;
            string? actualError = null;
            try
            {
                var (m, o) = QwenChatFormatGoldenTests.FromOpenAiJson(input);
                actual = QwenChatFormat.Render(m, o);
            }
            catch (ChatFormatException e)
            {
                actualError = e.Message;
            }

            if (actual != expected || actualError != error)
            {
                failures.Add(input + "\nEXPECTED: " + JsonSerializer.Serialize(expected ?? error) + "\nACTUAL:   " + JsonSerializer.Serialize(actual ?? actualError));
            }
        }

        File.WriteAllLines("/tmp/qfuzz/failures.txt", failures);
        Assert.Empty(failures);
    }
}
