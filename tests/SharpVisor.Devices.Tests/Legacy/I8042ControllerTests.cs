using SharpVisor.Devices.Legacy;
using SharpVisor.Machine;
using static SharpVisor.Devices.Legacy.I8042Controller;

namespace SharpVisor.Devices.Tests.Legacy;

public sealed class I8042ControllerTests
{
    private readonly RecordingInterruptController _interrupts = new();
    private readonly MachineControl _control = new();
    private readonly I8042Controller _controller;

    public I8042ControllerTests()
    {
        _controller = new I8042Controller(
            new InterruptLine(_interrupts, KeyboardIrq),
            new InterruptLine(_interrupts, AuxIrq),
            _control);
    }

    private byte Status => Read(_controller.CommandPort);

    private static byte Read(SharpVisor.Machine.IPortIoDevice port)
    {
        Span<byte> data = stackalloc byte[1];
        port.Read(0, data);
        return data[0];
    }

    private void Command(byte command) => _controller.CommandPort.Write(0, [command]);

    private void Data(byte value) => _controller.DataPort.Write(0, [value]);

    /// <summary>Reads the output buffer the way Linux's i8042 driver does: only while OBF is set.</summary>
    private List<byte> Drain()
    {
        var bytes = new List<byte>();
        while ((Status & StatusOutputFull) != 0)
        {
            bytes.Add(Read(_controller.DataPort));
        }

        return bytes;
    }

    [Fact]
    public void IdleControllerHasAnEmptyOutputBufferAndIsReadyForInput()
    {
        byte status = Status;
        Assert.Equal(0, status & (StatusOutputFull | StatusInputFull));
        Assert.NotEqual(0, status & StatusKeyboardUnlocked);
        Assert.NotEqual(0, status & StatusSystemFlag);
    }

    [Fact]
    public void SelfTestAnswers55()
    {
        Command(CommandSelfTest);
        Assert.NotEqual(0, Status & StatusOutputFull);
        Assert.NotEqual(0, Status & StatusLastWriteWasCommand);
        Assert.Equal([SelfTestPassed], Drain());
        Assert.False(_control.IsStopRequested);
    }

    [Fact]
    public void InterfaceTestsPass()
    {
        Command(CommandTestKeyboard);
        Assert.Equal([InterfaceTestPassed], Drain());
        Command(CommandTestAux);
        Assert.Equal([InterfaceTestPassed], Drain());
    }

    [Fact]
    public void CommandByteIsReadAndWritten()
    {
        Command(CommandWriteCommandByte);
        Data(0x47);
        Assert.Equal(0, Status & StatusLastWriteWasCommand);
        Command(CommandReadCommandByte);
        Assert.Equal([0x47], Drain());
        Assert.Equal(0x47, _controller.CommandByte);

        // The status register's system flag mirrors the command byte's.
        Command(CommandWriteCommandByte);
        Data(0x00);
        Assert.Equal(0, Status & StatusSystemFlag);
    }

    [Fact]
    public void InterfaceEnableAndDisableCommandsToggleCommandByteBits()
    {
        Command(CommandDisableKeyboard);
        Command(CommandEnableAux);
        Assert.Equal(CommandByteKeyboardDisabled, _controller.CommandByte & (CommandByteKeyboardDisabled | CommandByteAuxDisabled));

        Command(CommandEnableKeyboard);
        Command(CommandDisableAux);
        Assert.Equal(CommandByteAuxDisabled, _controller.CommandByte & (CommandByteKeyboardDisabled | CommandByteAuxDisabled));
    }

    [Theory]
    [InlineData(0xFE)]
    [InlineData(0xF0)]
    [InlineData(0xFA)]
    public void PulsingTheResetLineResetsTheMachine(byte command)
    {
        Command(command);
        Assert.Equal(MachineStopReason.Reset, _control.StopReason);
        Assert.Equal(0, _control.ExitStatus);
    }

    [Fact]
    public void PulsingOtherLinesDoesNotReset()
    {
        Command(0xFF);
        Command(0xFD);
        Assert.False(_control.IsStopRequested);
    }

    [Fact]
    public void OutputPortWriteWithResetBitClearResets()
    {
        Command(CommandReadOutputPort);
        byte port = Drain().Single();
        Assert.Equal(OutputPortReset | OutputPortA20, port & (OutputPortReset | OutputPortA20));

        Command(CommandWriteOutputPort);
        Data(0x03);
        Assert.False(_control.IsStopRequested);
        Command(CommandWriteOutputPort);
        Data(0x02);
        Assert.Equal(MachineStopReason.Reset, _control.StopReason);
    }

    [Fact]
    public void KeyboardResetIsAcknowledgedAndPassesItsSelfTest()
    {
        Data(Ps2Keyboard.Reset);
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.BatPassed], Drain());
        Assert.True(_controller.KeyboardScanning);
    }

    [Fact]
    public void KeyboardCommandsWithParametersAreAcknowledgedTwice()
    {
        Data(Ps2Keyboard.SetLeds);
        Data(0x07);
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack], Drain());

        Data(Ps2Keyboard.SetTypematic);
        Data(0x20);
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack], Drain());

        Data(Ps2Keyboard.ScanCodeSetCommand);
        Data(0x00); // query
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack, 0x41], Drain()); // set 2, as seen through the translator

        Data(Ps2Keyboard.ResetDisable);
        Assert.Equal([Ps2Keyboard.Ack], Drain());
        Assert.False(_controller.KeyboardScanning);
        Data(Ps2Keyboard.Enable);
        Assert.Equal([Ps2Keyboard.Ack], Drain());
        Assert.True(_controller.KeyboardScanning);

        Data(0x01); // not a keyboard command
        Assert.Equal([Ps2Keyboard.Resend], Drain());
    }

    [Fact]
    public void GetIdReportsAnMf2KeyboardTranslatedOrNot()
    {
        Data(Ps2Keyboard.GetId);
        Assert.Equal([Ps2Keyboard.Ack, 0xAB, 0x41], Drain());

        Command(CommandWriteCommandByte);
        Data(CommandByteKeyboardInterrupt | CommandByteSystemFlag);
        Data(Ps2Keyboard.GetId);
        Assert.Equal([Ps2Keyboard.Ack, 0xAB, 0x83], Drain());
    }

    [Fact]
    public void KeyboardInterruptFollowsTheOutputBufferWhenEnabled()
    {
        // Enabled by default: each byte of a multi-byte reply is its own edge on IRQ 1.
        Data(Ps2Keyboard.Reset);
        Assert.True(_interrupts.Level(KeyboardIrq));
        Drain();
        Assert.False(_interrupts.Level(KeyboardIrq));
        Assert.Equal(2, _interrupts.RisingEdges(KeyboardIrq));
        Assert.Equal(0, _interrupts.RisingEdges(AuxIrq));

        // With the interrupt disabled in the command byte the controller is polled.
        Command(CommandWriteCommandByte);
        Data(CommandByteSystemFlag);
        Command(CommandSelfTest);
        Assert.False(_interrupts.Level(KeyboardIrq));
        Assert.Equal([SelfTestPassed], Drain());
    }

    [Fact]
    public void AuxLoopbackReturnsTheByteAsAuxDataOnIrq12()
    {
        Command(CommandWriteCommandByte);
        Data(CommandByteAuxInterrupt | CommandByteSystemFlag);
        Command(CommandWriteAuxOutput);
        Data(0x5A);

        Assert.NotEqual(0, Status & StatusAuxData);
        Assert.True(_interrupts.Level(AuxIrq));
        Assert.False(_interrupts.Level(KeyboardIrq));
        Assert.Equal([0x5A], Drain());
        Assert.False(_interrupts.Level(AuxIrq));
    }

    [Fact]
    public void WritesToTheEmptyAuxPortTimeOut()
    {
        Command(CommandWriteAux);
        Data(0xF2); // a mouse's GET ID

        byte status = Status;
        Assert.Equal(StatusOutputFull | StatusAuxData | StatusTimeout, status & (StatusOutputFull | StatusAuxData | StatusTimeout));
        Assert.Equal([AuxTimeoutReply], Drain());
        Assert.Equal(0, Status & StatusTimeout);
    }

    /// <summary>
    /// Linux's __i8042_command(): the low byte is the command, bits 12-15 the parameter count,
    /// bits 8-11 the result count. Fails where Linux would time out or see an aux error.
    /// </summary>
    private byte[] LinuxCommand(int command, params byte[] parameters)
    {
        Assert.Equal(0, Status & StatusInputFull);
        Command((byte)command);
        Assert.Equal((command >> 12) & 0xF, parameters.Length);
        foreach (byte p in parameters)
        {
            Assert.Equal(0, Status & StatusInputFull);
            Data(p);
        }

        var results = new byte[(command >> 8) & 0xF];
        for (int i = 0; i < results.Length; i++)
        {
            byte status = Status;
            Assert.True((status & StatusOutputFull) != 0, $"command 0x{command:x4}: no result byte {i} (Linux times out)");
            if ((command & 0xFF) == CommandWriteAuxOutput)
            {
                Assert.True((status & StatusAuxData) != 0, $"command 0x{command:x4}: loop result is not aux data");
            }

            results[i] = Read(_controller.DataPort);
        }

        return results;
    }

    [Fact]
    public void LinuxProbeFindsAControllerAKeyboardAndNoMouse()
    {
        // i8042_controller_check / selftest: nothing to flush, 0x55 back.
        Assert.Empty(Drain());
        Assert.Equal([SelfTestPassed], LinuxCommand(0x01AA));

        // i8042_controller_init: read the CTR twice, disable the keyboard and its interrupt.
        byte ctr = LinuxCommand(0x0120)[0];
        Assert.Equal(ctr, LinuxCommand(0x0120)[0]);
        Assert.NotEqual(0, ctr & CommandByteTranslate); // Linux keeps translation: no i8042.direct needed
        ctr = (byte)((ctr | CommandByteKeyboardDisabled) & ~CommandByteKeyboardInterrupt);
        Assert.Equal([], LinuxCommand(0x1060, ctr));

        // i8042_check_aux: AUX_LOOP echoes with the aux bit set; the aux interface toggles.
        Assert.Equal([0x5A], LinuxCommand(0x11D3, 0x5A));
        Assert.Equal([], LinuxCommand(0x00A7));
        Assert.NotEqual(0, LinuxCommand(0x0120)[0] & CommandByteAuxDisabled);
        Assert.Equal([], LinuxCommand(0x00A8));
        Assert.Equal(0, LinuxCommand(0x0120)[0] & CommandByteAuxDisabled);

        // AUX IRQ delivery test: with AUXINT on, a looped byte raises IRQ 12.
        ctr = (byte)(LinuxCommand(0x0120)[0] | CommandByteAuxInterrupt);
        LinuxCommand(0x1060, ctr);
        LinuxCommand(0x10D3, 0xA5);
        Assert.True(_interrupts.Level(AuxIrq));
        Assert.Equal(0xA5, Read(_controller.DataPort));

        // i8042_set_mux_mode: the third loop byte comes back unchanged, so no active multiplexer.
        Assert.Equal([0xF0], LinuxCommand(0x11D3, 0xF0));
        Assert.Equal([0x56], LinuxCommand(0x11D3, 0x56));
        Assert.Equal([0xA4], LinuxCommand(0x11D3, 0xA4));

        // Enable the keyboard port and interrupt, then atkbd's probe over IRQ 1.
        ctr = (byte)((LinuxCommand(0x0120)[0] & ~CommandByteKeyboardDisabled) | CommandByteKeyboardInterrupt);
        LinuxCommand(0x1060, ctr);
        int keyboardEdges = _interrupts.RisingEdges(KeyboardIrq);
        Data(Ps2Keyboard.Reset);
        Data(Ps2Keyboard.GetId);
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.BatPassed, Ps2Keyboard.Ack, 0xAB, 0x41], Drain());
        Assert.Equal(keyboardEdges + 5, _interrupts.RisingEdges(KeyboardIrq));

        // psmouse's probe through AUX_SEND fails at once: a timeout-flagged 0xFE on IRQ 12.
        int auxEdges = _interrupts.RisingEdges(AuxIrq);
        Assert.Equal([], LinuxCommand(0x10D4, 0xF2));
        Assert.Equal(auxEdges + 1, _interrupts.RisingEdges(AuxIrq));
        Assert.Equal(StatusOutputFull | StatusAuxData | StatusTimeout, Status & (StatusOutputFull | StatusAuxData | StatusTimeout));
        Assert.Equal([AuxTimeoutReply], Drain());
        Assert.False(_control.IsStopRequested);
    }

    /// <summary>Linux's i8042_interrupt: while IRQ 1 is up, read the output buffer (each byte is its own edge).</summary>
    private List<byte> ServiceKeyboardInterrupts()
    {
        var bytes = new List<byte>();
        while (_interrupts.Level(KeyboardIrq))
        {
            Assert.Equal(StatusOutputFull, Status & (StatusOutputFull | StatusAuxData));
            bytes.Add(Read(_controller.DataPort));
        }

        return bytes;
    }

    private List<byte> KeyboardCommand(params byte[] bytes)
    {
        var replies = new List<byte>();
        foreach (byte b in bytes)
        {
            Data(b);
            replies.AddRange(ServiceKeyboardInterrupts());
        }

        return replies;
    }

    private static readonly byte[] s_ctrlAltDelSet1 = [0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D];

    [Fact]
    public void AtkbdConnectsOverIrq1ThroughTheTranslator()
    {
        // atkbd_probe: GETID (the MF2 id as translated), then deactivate; atkbd_select_set keeps
        // set 2 behind the translator; atkbd_reset_state: LEDs and repeat rate; atkbd_activate.
        int edges = _interrupts.RisingEdges(KeyboardIrq);
        Assert.Equal([Ps2Keyboard.Ack, 0xAB, 0x41], KeyboardCommand(Ps2Keyboard.GetId));
        Assert.Equal([Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.ResetDisable));
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.SetLeds, 0x00));
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.SetTypematic, 0x00));
        Assert.Equal([Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.Enable));
        Assert.Equal(edges + 9, _interrupts.RisingEdges(KeyboardIrq));
        Assert.True(_controller.KeyboardScanning);
        Assert.Equal(2, _controller.KeyboardScanCodeSet);

        // Ctrl-Alt-Del then reaches atkbd_interrupt as set 1, one IRQ 1 edge per byte.
        Assert.True(_controller.InjectCtrlAltDel());
        Assert.Equal(s_ctrlAltDelSet1, ServiceKeyboardInterrupts());
        Assert.Equal(edges + 9 + s_ctrlAltDelSet1.Length, _interrupts.RisingEdges(KeyboardIrq));
        Assert.Equal(0, _interrupts.RisingEdges(AuxIrq));
        Assert.False(_control.IsStopRequested);
    }

    [Fact]
    public void WithoutTranslationTheGuestReadsSet2()
    {
        Command(CommandWriteCommandByte);
        Data(CommandByteKeyboardInterrupt | CommandByteSystemFlag);

        Assert.True(_controller.InjectCtrlAltDel());

        Assert.Equal([0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14], ServiceKeyboardInterrupts());
    }

    [Fact]
    public void SwitchingTheKeyboardToSet1WithoutTranslationGivesSet1()
    {
        Command(CommandWriteCommandByte);
        Data(CommandByteKeyboardInterrupt | CommandByteSystemFlag);
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.ScanCodeSetCommand, 1));
        Assert.Equal([Ps2Keyboard.Ack, Ps2Keyboard.Ack, 1], KeyboardCommand(Ps2Keyboard.ScanCodeSetCommand, 0));

        Assert.True(_controller.InjectCtrlAltDel());

        Assert.Equal(s_ctrlAltDelSet1, ServiceKeyboardInterrupts());
    }

    [Fact]
    public void APollingGuestSeesTheKeysWithItsInterruptOff()
    {
        // The test kernel's way: interrupts off in the command byte, poll 0x64 and read 0x60.
        Command(CommandWriteCommandByte);
        Data(CommandByteSystemFlag | CommandByteTranslate);

        Assert.True(_controller.InjectCtrlAltDel());

        Assert.False(_interrupts.Level(KeyboardIrq));
        Assert.Equal(StatusOutputFull, Status & (StatusOutputFull | StatusAuxData | StatusTimeout));
        Assert.Equal(s_ctrlAltDelSet1, Drain());
        Assert.Equal(0, _interrupts.RisingEdges(KeyboardIrq));
    }

    [Fact]
    public void ADisabledKeyboardInterfaceHoldsTheKeysUntilEnabled()
    {
        Command(CommandDisableKeyboard);

        Assert.True(_controller.InjectCtrlAltDel());
        Assert.Equal(0, Status & StatusOutputFull);
        Assert.False(_interrupts.Level(KeyboardIrq));

        Command(CommandEnableKeyboard);
        Assert.Equal(s_ctrlAltDelSet1, ServiceKeyboardInterrupts());
    }

    [Fact]
    public void ControllerResultsAreReadBeforeKeysStillInTheKeyboard()
    {
        Assert.True(_controller.InjectCtrlAltDel());

        Command(CommandReadCommandByte);

        List<byte> bytes = Drain();
        Assert.Equal([s_ctrlAltDelSet1[0], _controller.CommandByte, .. s_ctrlAltDelSet1[1..]], bytes);
    }

    [Fact]
    public void AGuestThatNeverReadsOverflowsTheKeyboardNotTheHost()
    {
        Assert.True(_controller.InjectCtrlAltDel());
        for (int i = 0; i < 100; i++)
        {
            Assert.False(_controller.InjectCtrlAltDel());
        }

        // The first chord, then the keyboard's overrun code (0x00 in set 2, translated to 0xFF).
        Assert.Equal([.. s_ctrlAltDelSet1, 0xFF], ServiceKeyboardInterrupts());
        Assert.True(_controller.InjectCtrlAltDel());
        Assert.Equal(s_ctrlAltDelSet1, ServiceKeyboardInterrupts());
    }

    [Fact]
    public void AKeyboardTheGuestDisabledTypesNothing()
    {
        Assert.Equal([Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.ResetDisable));

        Assert.False(_controller.InjectCtrlAltDel());

        Assert.Equal(0, Status & StatusOutputFull);
        Assert.Equal([Ps2Keyboard.Ack], KeyboardCommand(Ps2Keyboard.Enable));
        Assert.True(_controller.InjectCtrlAltDel());
    }

    [Fact]
    public void TheGuestResetsThroughTheControllerAfterCtrlAltDel()
    {
        // What Linux does on Ctrl-Alt-Del with reboot=k: read the keys, then pulse the reset line.
        _controller.InjectCtrlAltDel();
        Assert.Equal(s_ctrlAltDelSet1, ServiceKeyboardInterrupts());

        Command(CommandPulseResetLine);

        Assert.Equal(MachineStopReason.Reset, _control.StopReason);
    }

    [Fact]
    public async Task InjectionRacesWithTheGuestWithoutLosingOrReorderingBytes()
    {
        Command(CommandWriteCommandByte);
        Data(CommandByteSystemFlag | CommandByteTranslate);
        var received = new List<byte>();
        int typed = 0;
        using var done = new CancellationTokenSource();
        var guest = Task.Run(() =>
        {
            while (!done.IsCancellationRequested || (Status & StatusOutputFull) != 0)
            {
                if ((Status & StatusOutputFull) != 0)
                {
                    received.Add(Read(_controller.DataPort));
                }
            }
        });

        for (int i = 0; i < 200; i++)
        {
            if (_controller.InjectCtrlAltDel())
            {
                typed++;
            }
        }

        done.Cancel();
        await guest.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(typed > 0);
        received.RemoveAll(b => b == 0xFF); // overrun codes, when the host typed faster than the guest read
        Assert.Equal(typed * s_ctrlAltDelSet1.Length, received.Count);
        for (int i = 0; i < received.Count; i++)
        {
            Assert.Equal(s_ctrlAltDelSet1[i % s_ctrlAltDelSet1.Length], received[i]);
        }
    }

    [Fact]
    public void UnregisteredWidthsAndOffsetsAreHarmless()
    {
        var bus = new PortIoBus();
        _controller.Register(bus);

        byte[] word = new byte[2];
        Assert.False(bus.Read(DataPortAddress, word)); // a 16-bit access does not fit the 1-port range
        Assert.Equal([0xFF, 0xFF], word);
        Assert.True(bus.Write(CommandPortAddress, [CommandSelfTest]));
        byte[] one = new byte[1];
        Assert.True(bus.Read(DataPortAddress, one));
        Assert.Equal(SelfTestPassed, one[0]);
    }
}
