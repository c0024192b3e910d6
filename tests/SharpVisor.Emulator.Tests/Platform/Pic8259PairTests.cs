using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>The 8259 pair driven through its ports, as Linux's i8259.c does it.</summary>
public class Pic8259PairTests
{
    private readonly Pic8259Pair _pic = new();
    private readonly PortIoBus _ports = new();

    public Pic8259PairTests()
    {
        _pic.RegisterPorts(_ports);
    }

    [Fact]
    public void LinuxInitSequenceProgramsVectorBasesAndMasks()
    {
        InitLikeLinux();
        Assert.Equal(0xFFFF, _pic.InterruptMask);
        Out(0x21, 0xFA); // unmask IRQ 0 and the cascade
        Out(0xA1, 0xFF);
        Assert.Equal(0xFA, In(0x21));
        Assert.Equal(0xFFFA, _pic.InterruptMask);

        _pic.SetIrq(0, true);
        Assert.True(_pic.OutputAsserted);
        Assert.Equal(0x30, _pic.AcknowledgeInterrupt());
        Assert.False(_pic.OutputAsserted);
    }

    [Fact]
    public void InterruptGoesInServiceUntilEoi()
    {
        InitLikeLinux();
        Out(0x21, 0x00);
        _pic.SetIrq(1, true);
        Out(0x20, 0x0A); // OCW3: read IRR
        Assert.Equal(0x02, In(0x20));

        Assert.Equal(0x31, _pic.AcknowledgeInterrupt());
        Out(0x20, 0x0B); // OCW3: read ISR
        Assert.Equal(0x02, In(0x20));
        Out(0x20, 0x0A);
        Assert.Equal(0x00, In(0x20)); // the edge was consumed

        Out(0x20, 0x61); // specific EOI for IRQ 1, as Linux's mask_and_ack_8259A
        Out(0x20, 0x0B);
        Assert.Equal(0x00, In(0x20));
    }

    [Fact]
    public void MaskedInputWaitsInIrr()
    {
        InitLikeLinux();
        Out(0x21, 0xF7); // only IRQ 3 unmasked... then mask it too
        Out(0x21, 0xFF);
        _pic.SetIrq(3, true);
        Assert.False(_pic.OutputAsserted);
        Assert.Null(_pic.AcknowledgeInterrupt());
        Out(0x21, 0xF7);
        Assert.True(_pic.OutputAsserted);
        Assert.Equal(0x33, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void LowerNumberedInputsHavePriorityAndNest()
    {
        InitLikeLinux();
        Out(0x21, 0x00);
        _pic.SetIrq(5, true);
        _pic.SetIrq(3, true);
        Assert.Equal(0x33, _pic.AcknowledgeInterrupt());

        // IRQ 5 waits behind the in-service IRQ 3; IRQ 1 preempts it.
        Assert.False(_pic.OutputAsserted);
        _pic.SetIrq(1, true);
        Assert.Equal(0x31, _pic.AcknowledgeInterrupt());
        Out(0x20, 0x20); // non-specific EOI ends IRQ 1
        Assert.False(_pic.OutputAsserted);
        Out(0x20, 0x20); // ends IRQ 3
        Assert.Equal(0x35, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void SlaveInterruptsCascadeThroughIrq2()
    {
        InitLikeLinux();
        Out(0x21, 0xFB);
        Out(0xA1, 0xEF); // IRQ 12 (slave input 4)
        _pic.SetIrq(12, true);
        Assert.True(_pic.OutputAsserted);
        Assert.Equal(0x3C, _pic.PeekVector());
        Assert.Equal(0x3C, _pic.AcknowledgeInterrupt());

        Out(0x20, 0x0B);
        Assert.Equal(0x04, In(0x20));
        Out(0xA0, 0x0B);
        Assert.Equal(0x10, In(0xA0));

        // Linux EOIs the slave, then the master's cascade input.
        Out(0xA0, 0x64);
        Out(0x20, 0x62);
        Assert.Equal(0x00, In(0x20));
        Assert.Equal(0x00, In(0xA0));
    }

    [Fact]
    public void LevelTriggeredInputFollowsItsLineThroughElcr()
    {
        InitLikeLinux();
        Out(0x21, 0xFB);
        Out(0xA1, 0x00);
        Out(0x4D1, 0x04); // IRQ 10 level-triggered
        Assert.Equal(0x04, In(0x4D1));

        _pic.SetIrq(10, true);
        Assert.Equal(0x3A, _pic.AcknowledgeInterrupt());
        Out(0xA0, 0x0A);
        Assert.Equal(0x04, In(0xA0)); // still requested while the line is high
        Out(0xA0, 0x20);
        Out(0x20, 0x20);
        Assert.True(_pic.OutputAsserted); // and asks again after EOI

        // Dropped before the CPU answered: the slave forgets it, the master's cascade edge does not
        // (as in KVM and QEMU), so the INTA yields the spurious IRQ 15 vector.
        _pic.SetIrq(10, false);
        Out(0xA0, 0x0A);
        Assert.Equal(0x00, In(0xA0));
        Assert.Equal(0x3F, _pic.AcknowledgeInterrupt());
        Out(0x20, 0x20);
        Assert.False(_pic.OutputAsserted);
    }

    [Fact]
    public void EdgeInputHeldHighDoesNotRetrigger()
    {
        InitLikeLinux();
        Out(0x21, 0x00);
        _pic.SetIrq(4, true);
        Assert.Equal(0x34, _pic.AcknowledgeInterrupt());
        Out(0x20, 0x20);
        Assert.False(_pic.OutputAsserted);
        _pic.SetIrq(4, false);
        _pic.SetIrq(4, true);
        Assert.True(_pic.OutputAsserted);
    }

    [Fact]
    public void ElcrCannotMakeTimerKeyboardCascadeRtcOrFpuLevelTriggered()
    {
        Out(0x4D0, 0xFF);
        Out(0x4D1, 0xFF);
        Assert.Equal(0xF8, In(0x4D0));
        Assert.Equal(0xDE, In(0x4D1));
    }

    [Fact]
    public void VanishedSlaveRequestGivesSpuriousIrq15()
    {
        InitLikeLinux();
        Out(0x21, 0xFB);
        Out(0xA1, 0x00);
        Out(0x4D1, 0x08); // IRQ 11 level-triggered
        _pic.SetIrq(11, true);
        _pic.SetIrq(11, false); // gone before the CPU answered; the master's cascade edge is latched
        Assert.True(_pic.OutputAsserted);
        Assert.Equal(0x3F, _pic.AcknowledgeInterrupt());
        Out(0xA0, 0x0B);
        Assert.Equal(0x00, In(0xA0)); // nothing in service on the slave
        Out(0x20, 0x0B);
        Assert.Equal(0x04, In(0x20)); // the master's cascade is, so Linux EOIs it
    }

    [Fact]
    public void PollCommandAcknowledgesAndReportsTheInput()
    {
        InitLikeLinux();
        Out(0x21, 0x00);
        _pic.SetIrq(6, true);
        Out(0x20, 0x0C); // OCW3 poll
        Assert.Equal(0x86, In(0x20));
        Out(0x20, 0x0B);
        Assert.Equal(0x40, In(0x20));
        Out(0x20, 0x0C);
        Assert.Equal(0x00, In(0x20));
    }

    [Fact]
    public void RotateOnNonSpecificEoiMakesTheServedInputLowest()
    {
        InitLikeLinux();
        Out(0x21, 0x00);
        _pic.SetIrq(0, true);
        Assert.Equal(0x30, _pic.AcknowledgeInterrupt());
        Out(0x20, 0xA0); // rotate on non-specific EOI
        _pic.SetIrq(0, false);
        _pic.SetIrq(0, true);
        _pic.SetIrq(7, true);
        Assert.Equal(0x37, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void AutoEoiLeavesNothingInService()
    {
        Out(0x20, 0x11);
        Out(0x21, 0x40);
        Out(0x21, 0x04);
        Out(0x21, 0x03); // ICW4: 8086 mode, auto-EOI
        Out(0x21, 0x00);
        _pic.SetIrq(1, true);
        Assert.Equal(0x41, _pic.AcknowledgeInterrupt());
        Out(0x20, 0x0B);
        Assert.Equal(0x00, In(0x20));
    }

    [Fact]
    public void OutputCallbackReportsChanges()
    {
        var levels = new List<bool>();
        _pic.OutputChanged = levels.Add;
        InitLikeLinux();
        Out(0x21, 0x00);
        _pic.SetIrq(1, true);
        _pic.SetIrq(1, false);
        _pic.AcknowledgeInterrupt();
        Assert.Equal([true, false], levels);
    }

    [Fact]
    public void WordAccessesReachBothPorts()
    {
        InitLikeLinux();
        _ports.Write(0x20, [0x0B, 0x5A]); // OCW3 to 0x20, IMR to 0x21
        Assert.Equal(0x5A, In(0x21));
        Span<byte> pair = stackalloc byte[2];
        _ports.Read(0x20, pair);
        Assert.Equal(0x00, pair[0]);
        Assert.Equal(0x5A, pair[1]);
    }

    /// <summary>init_8259A(0): ICW1-4 on both chips, vectors 0x30 and 0x38, slave on IRQ 2, normal EOI, all masked.</summary>
    private void InitLikeLinux()
    {
        Out(0x21, 0xFF);
        Out(0xA1, 0xFF);
        Out(0x20, 0x11);
        Out(0x21, 0x30);
        Out(0x21, 0x04);
        Out(0x21, 0x01);
        Out(0xA0, 0x11);
        Out(0xA1, 0x38);
        Out(0xA1, 0x02);
        Out(0xA1, 0x01);
        Out(0x21, 0xFF);
        Out(0xA1, 0xFF);
    }

    private void Out(ushort port, byte value) => Assert.True(_ports.Write(port, [value]));

    private byte In(ushort port)
    {
        Span<byte> data = stackalloc byte[1];
        Assert.True(_ports.Read(port, data));
        return data[0];
    }
}
