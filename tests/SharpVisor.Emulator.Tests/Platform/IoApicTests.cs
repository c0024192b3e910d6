using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

public class IoApicTests
{
    private readonly PlatformTimeBase _time = new(new ManualTimeProvider());
    private readonly ApicBus _bus = new();
    private readonly PlatformLog _log = new();
    private readonly LocalApic _cpu0;
    private readonly LocalApic _cpu1;
    private readonly IoApic _ioapic;

    public IoApicTests()
    {
        _cpu0 = new LocalApic(0, _bus, _time);
        _cpu1 = new LocalApic(1, _bus, _time);
        _cpu0.SoftwareEnable();
        _cpu1.SoftwareEnable();
        _ioapic = new IoApic(_bus, _log);
        _bus.EoiListener = _ioapic.EndOfInterrupt;
    }

    [Fact]
    public void IdentificationRegistersReadThroughTheIndirectWindow()
    {
        Assert.Equal(0x0017_0011u, ReadRegister(IoApic.RegisterVersion));
        Assert.Equal(0u, ReadRegister(IoApic.RegisterId));
        WriteRegister(IoApic.RegisterId, 0x0200_0000);
        Assert.Equal(0x0200_0000u, ReadRegister(IoApic.RegisterId));
        Assert.Equal(0x0200_0000u, ReadRegister(IoApic.RegisterArbitration));

        // Version is read-only; IOREGSEL reads back.
        WriteRegister(IoApic.RegisterVersion, 0);
        Assert.Equal(0x0017_0011u, ReadRegister(IoApic.RegisterVersion));
        Assert.Equal(IoApic.RegisterVersion, Read32(IoApic.RegisterSelectOffset));
    }

    [Fact]
    public void EveryEntryStartsMasked()
    {
        for (int pin = 0; pin < IoApic.PinCount; pin++)
        {
            Assert.Equal(IoApic.EntryMasked, ReadEntry(pin));
        }

        _ioapic.SetPin(3, true);
        _cpu0.AssertNoInterrupt();
    }

    [Fact]
    public void EdgePinDeliversOnRisingEdgesOnly()
    {
        WriteEntry(4, 0x24, destination: 0);
        _ioapic.SetPin(4, true);
        Assert.Equal(0x24, _cpu0.TakeInterrupt());
        _cpu0.EndOfInterrupt();

        _ioapic.SetPin(4, true); // still high: no new edge
        _cpu0.AssertNoInterrupt();
        _ioapic.SetPin(4, false);
        _ioapic.SetPin(4, true);
        Assert.Equal(0x24, _cpu0.TakeInterrupt());
        Assert.False(_cpu0.TmrBit(0x24));
    }

    [Fact]
    public void EdgeOnAMaskedPinIsLost()
    {
        WriteEntry(4, 0x24, destination: 0, masked: true);
        _ioapic.SetPin(4, true);
        _ioapic.SetPin(4, false);
        WriteEntry(4, 0x24, destination: 0);
        _cpu0.AssertNoInterrupt();
    }

    [Fact]
    public void LevelPinSetsRemoteIrrUntilEoiAndIsRedeliveredWhileAsserted()
    {
        WriteEntry(10, 0x3A, destination: 1, level: true);
        _ioapic.SetPin(10, true);
        Assert.Equal(0x3A, _cpu1.TakeInterrupt());
        Assert.True(_cpu1.TmrBit(0x3A));
        Assert.NotEqual(0UL, ReadEntry(10) & IoApic.EntryRemoteIrr);

        // The device keeps the line up: after EOI the interrupt comes again.
        _cpu1.EndOfInterrupt();
        Assert.True(_cpu1.IrrBit(0x3A));
        Assert.NotEqual(0UL, ReadEntry(10) & IoApic.EntryRemoteIrr);
        Assert.Equal(0x3A, _cpu1.TakeInterrupt());

        // The handler quiets the device, then EOIs: remote IRR clears and nothing more arrives.
        _ioapic.SetPin(10, false);
        _cpu1.EndOfInterrupt();
        Assert.Equal(0UL, ReadEntry(10) & IoApic.EntryRemoteIrr);
        _cpu1.AssertNoInterrupt();
    }

    [Fact]
    public void RemoteIrrHoldsBackAReassertionUntilEoi()
    {
        WriteEntry(11, 0x3B, destination: 0, level: true);
        _ioapic.SetPin(11, true);
        Assert.Equal(0x3B, _cpu0.TakeInterrupt());
        _ioapic.SetPin(11, false);
        _ioapic.SetPin(11, true);
        Assert.False(_cpu0.IrrBit(0x3B));
        _cpu0.EndOfInterrupt();
        Assert.Equal(0x3B, _cpu0.TakeInterrupt());
    }

    [Fact]
    public void UnmaskingAnAssertedLevelPinDeliversIt()
    {
        WriteEntry(16, 0x51, destination: 0, level: true, masked: true);
        _ioapic.SetPin(16, true);
        _cpu0.AssertNoInterrupt();
        WriteEntry(16, 0x51, destination: 0, level: true);
        Assert.Equal(0x51, _cpu0.TakeInterrupt());
    }

    [Fact]
    public void GuestCannotWriteRemoteIrrOrDeliveryStatus()
    {
        WriteRegister(IoApic.RegisterRedirectionBase + 2, 0x30 | (uint)(IoApic.EntryRemoteIrr | IoApic.EntryDeliveryStatus));
        Assert.Equal(0x30UL, ReadEntry(1));
    }

    [Fact]
    public void LogicalDestinationAndHighDwordSelectTheCpu()
    {
        _cpu0.WriteRegister(ApicRegister.LogicalDestination, 0x0100_0000);
        _cpu1.WriteRegister(ApicRegister.LogicalDestination, 0x0200_0000);
        WriteEntry(5, 0x45, destination: 0x02, logical: true);
        Assert.Equal(0x0200_0000u, ReadRegister(IoApic.RegisterRedirectionBase + 11));
        _ioapic.SetPin(5, true);
        Assert.Equal(0x45, _cpu1.TakeInterrupt());
        _cpu0.AssertNoInterrupt();
    }

    [Fact]
    public void NmiDeliveryModeRaisesAnNmi()
    {
        WriteEntry(7, 0, destination: 0, mode: ApicDeliveryMode.Nmi);
        _ioapic.SetPin(7, true);
        Assert.True(_cpu0.TryTakeNmi());
    }

    [Fact]
    public void BadPinsAndDestinationsAreLoggedNotFatal()
    {
        _ioapic.SetPin(24, true);
        _ioapic.SetPin(-1, true);
        WriteEntry(3, 0x33, destination: 9);
        _ioapic.SetPin(3, true);
        Assert.Contains("no local APIC", _log.LastMessage);

        // Out-of-range registers read as zero and ignore writes.
        WriteRegister(0x40, 0xFFFF_FFFF);
        Assert.Equal(0u, ReadRegister(0x40));
        Assert.True(_log.Count >= 3);
    }

    [Fact]
    public void AsAnInterruptControllerGsisArePinsAndMsisGoToTheBus()
    {
        WriteEntry(18, 0x48, destination: 1);
        _ioapic.SetIrqLevel(18, true);
        Assert.Equal(0x48, _cpu1.TakeInterrupt());
        _ioapic.SetIrqLevel(99, true);
        Assert.Contains("no GSI 99", _log.LastMessage);

        (ulong address, uint data) = MsiMessage.Encode(0, 0x49);
        _ioapic.SignalMsi(address, data);
        Assert.Equal(0x49, _cpu0.TakeInterrupt());
    }

    private void WriteEntry(int pin, int vector, uint destination, bool level = false, bool logical = false, bool masked = false, ApicDeliveryMode mode = ApicDeliveryMode.Fixed)
    {
        uint low = (uint)vector | ((uint)mode << 8) | (logical ? (uint)IoApic.EntryLogicalDestination : 0)
            | (level ? (uint)IoApic.EntryLevelTriggered : 0) | (masked ? (uint)IoApic.EntryMasked : 0);

        // Linux writes the high half first, then the low half (which may unmask).
        WriteRegister(IoApic.RegisterRedirectionBase + (uint)(2 * pin) + 1, destination << 24);
        WriteRegister(IoApic.RegisterRedirectionBase + (uint)(2 * pin), low);
    }

    private ulong ReadEntry(int pin) =>
        ReadRegister(IoApic.RegisterRedirectionBase + (uint)(2 * pin)) | ((ulong)ReadRegister(IoApic.RegisterRedirectionBase + (uint)(2 * pin) + 1) << 32);

    private uint ReadRegister(uint register)
    {
        Write32(IoApic.RegisterSelectOffset, register);
        return Read32(IoApic.WindowOffset);
    }

    private void WriteRegister(uint register, uint value)
    {
        Write32(IoApic.RegisterSelectOffset, register);
        Write32(IoApic.WindowOffset, value);
    }

    private uint Read32(uint offset)
    {
        Span<byte> data = stackalloc byte[4];
        _ioapic.Read(offset, data);
        return BitConverter.ToUInt32(data);
    }

    private void Write32(uint offset, uint value) => _ioapic.Write(offset, BitConverter.GetBytes(value));
}
