using SharpVisor.Devices.Legacy;

namespace SharpVisor.Devices.Tests.Legacy;

public sealed class ScanCodeTranslatorTests
{
    [Theory]
    [InlineData(0x76, 0x01)] // Esc
    [InlineData(0x1C, 0x1E)] // A
    [InlineData(0x5A, 0x1C)] // Enter
    [InlineData(0x14, 0x1D)] // left Ctrl
    [InlineData(0x11, 0x38)] // left Alt
    [InlineData(0x71, 0x53)] // Delete (after E0) / keypad dot
    [InlineData(0x83, 0x41)] // F7, and the second keyboard ID byte
    [InlineData(0x02, 0x41)] // "set 2" in a scan code set query
    [InlineData(0x00, 0xFF)] // overrun
    [InlineData(0xFA, 0xFA)] // ACK
    [InlineData(0xAA, 0xAA)] // BAT passed
    [InlineData(0xE0, 0xE0)] // extended-key prefix
    public void TheTableTurnsSet2IntoSet1(byte set2, byte set1)
    {
        Assert.Equal(set1, ScanCodeTranslator.Translate(set2));
    }

    [Fact]
    public void TheBreakPrefixIsSwallowedAndSetsBit7OfTheNextByte()
    {
        var translator = new ScanCodeTranslator();
        var output = new List<byte>();
        foreach (byte code in new byte[] { 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x14 })
        {
            if (translator.TryTranslate(code, out byte translated))
            {
                output.Add(translated);
            }
        }

        Assert.Equal([0xE0, 0x53, 0xE0, 0xD3, 0x9D], output);
    }

    [Fact]
    public void ResetForgetsAHalfSeenBreak()
    {
        var translator = new ScanCodeTranslator();
        Assert.False(translator.TryTranslate(0xF0, out _));

        translator.Reset();

        Assert.True(translator.TryTranslate(0x14, out byte translated));
        Assert.Equal(0x1D, translated);
    }
}
