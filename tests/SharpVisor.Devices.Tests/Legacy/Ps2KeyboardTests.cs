using SharpVisor.Devices.Legacy;
using static SharpVisor.Devices.Legacy.Ps2Keyboard;

namespace SharpVisor.Devices.Tests.Legacy;

/// <summary>The PS/2 keyboard on its own: its command set, parameter checks, typed keys and its bounded buffer.</summary>
public sealed class Ps2KeyboardTests
{
    private readonly Ps2Keyboard _keyboard = new();

    private List<byte> Drain()
    {
        var bytes = new List<byte>();
        while (_keyboard.TryRead(out byte value))
        {
            bytes.Add(value);
        }

        return bytes;
    }

    private List<byte> Send(params byte[] bytes)
    {
        foreach (byte b in bytes)
        {
            _keyboard.Write(b);
        }

        return Drain();
    }

    [Fact]
    public void PowersUpScanningInSet2WithNothingToSay()
    {
        Assert.True(_keyboard.Scanning);
        Assert.Equal(2, _keyboard.ScanCodeSet);
        Assert.False(_keyboard.HasData);
    }

    [Fact]
    public void EveryCommandOfLinuxsAtkbdIsAcknowledged()
    {
        Assert.Equal([Ack, BatPassed], Send(Reset));
        Assert.Equal([Ack, IdFirst, IdSecond], Send(GetId));
        Assert.Equal([Ack], Send(ResetDisable));
        Assert.False(_keyboard.Scanning);
        Assert.Equal([Ack, Ack], Send(SetLeds, 0x07));
        Assert.Equal([Ack, Ack], Send(SetTypematic, 0x20));
        Assert.Equal([Ack, Ack, 2], Send(ScanCodeSetCommand, 0));
        Assert.Equal([Ack, Ack], Send(ScanCodeSetCommand, 3));
        Assert.Equal(3, _keyboard.ScanCodeSet);
        Assert.Equal([Ack], Send(SetAllMakeBreakTypematic));
        Assert.Equal([Ack], Send(Enable));
        Assert.True(_keyboard.Scanning);
        Assert.Equal([EchoReply], Send(Echo));
        Assert.Equal([Ack], Send(SetDefaults));
        Assert.Equal(2, _keyboard.ScanCodeSet);
    }

    [Fact]
    public void ResendRepeatsTheLastByteSent()
    {
        Send(GetId);
        Assert.Equal([IdSecond], Send(ResendCommand));
    }

    [Theory]
    [InlineData(SetLeds, 0x08)]
    [InlineData(SetLeds, 0x80)]
    [InlineData(SetTypematic, 0x80)]
    [InlineData(ScanCodeSetCommand, 4)]
    [InlineData(ScanCodeSetCommand, 0x7F)]
    public void AnOutOfRangeParameterIsAskedForAgain(byte command, byte bad)
    {
        Assert.Equal([Ack], Send(command));
        Assert.Equal([Resend], Send(bad));
        Assert.Equal(2, _keyboard.ScanCodeSet);

        // Still waiting for the parameter: a good one completes the command.
        Assert.Equal([Ack], Send(1));
        Assert.Equal(command == ScanCodeSetCommand ? 1 : 2, _keyboard.ScanCodeSet);
    }

    [Fact]
    public void ACommandWhereAParameterWasExpectedStartsThatCommand()
    {
        Assert.Equal([Ack], Send(SetLeds));
        Assert.Equal([Ack], Send(ResetDisable));
        Assert.False(_keyboard.Scanning);
        Assert.Equal([Ack, Ack], Send(SetLeds, 0)); // the keyboard no longer waits for the old parameter
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x01)]
    [InlineData(0x55)]
    [InlineData(0xEC)]
    public void BytesThatAreNotCommandsAreRefused(byte value)
    {
        Assert.Equal([Resend], Send(value));
    }

    [Theory]
    [InlineData(1, new byte[] { 0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D })]
    [InlineData(2, new byte[] { 0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14 })]
    [InlineData(3, new byte[] { 0x11, 0x19, 0x64, 0xF0, 0x64, 0xF0, 0x19, 0xF0, 0x11 })]
    public void ACtrlAltDelChordIsSentInTheCurrentSet(byte set, byte[] expected)
    {
        Send(ScanCodeSetCommand, set);

        Assert.True(_keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete));

        Assert.Equal(expected, Drain());
    }

    [Fact]
    public void ADisabledKeyboardTypesNothing()
    {
        Send(ResetDisable);

        Assert.False(_keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete));

        Assert.False(_keyboard.HasData);
    }

    [Fact]
    public void AFullBufferDropsWholeChordsAndSendsOneOverrunCode()
    {
        Assert.True(_keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete)); // 11 bytes in set 2
        Assert.False(_keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete));
        Assert.False(_keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete));
        Assert.Equal(12, _keyboard.BufferedBytes);

        // Commands are still answered from the room key presses leave.
        Assert.Equal(EchoReply, Send(Echo)[^1]);
        Assert.False(_keyboard.HasData);

        Assert.True(_keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete));
        Assert.Equal(11, _keyboard.BufferedBytes);
    }

    [Fact]
    public void TheOverrunCodeFollowsTheChordThatFit()
    {
        _keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete);
        _keyboard.TryTypeChord(Ps2Key.LeftCtrl);

        List<byte> sent = Drain();

        Assert.Equal(12, sent.Count);
        Assert.Equal(OverrunSet23, sent[^1]);
    }

    [Fact]
    public void RepliesNeverOverflowTheBuffer()
    {
        for (int i = 0; i < 100; i++)
        {
            _keyboard.Write(GetId);
        }

        Assert.Equal(BufferCapacity, _keyboard.BufferedBytes);
        Assert.Equal(BufferCapacity, Drain().Count);
    }

    [Fact]
    public void CommandsThatResetTheKeyboardFlushItsBuffer()
    {
        _keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete);

        Assert.Equal([Ack, BatPassed], Send(Reset));
    }
}
