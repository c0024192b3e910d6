using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Emulator.Platform;

/// <summary>
/// One 8259A: the register state and priority logic, modelled on QEMU's and KVM's i8259. Not
/// thread-safe; <see cref="Pic8259Pair"/> serialises all access.
/// </summary>
internal sealed class Pic8259
{
    private readonly bool _isMaster;
    private readonly byte _elcrMask;

    public Pic8259(bool isMaster)
    {
        _isMaster = isMaster;

        // IRQ 0, 1, 2 (master) and 8, 13 (slave) are always edge-triggered.
        _elcrMask = isMaster ? (byte)0xF8 : (byte)0xDE;
        Reset();
    }

    public byte Irr { get; private set; }

    public byte Isr { get; private set; }

    public byte Imr { get; private set; }

    public byte Elcr { get; private set; }

    public byte VectorBase { get; private set; }

    public bool AutoEoi { get; private set; }

    public bool SpecialFullyNested { get; private set; }

    /// <summary>0: operational; 1-3: waiting for ICW2, ICW3, ICW4.</summary>
    public int InitState { get; private set; }

    private byte LastIrr { get; set; }

    private int PriorityAdd { get; set; }

    private bool ReadIsr { get; set; }

    private bool Poll { get; set; }

    private bool SpecialMask { get; set; }

    private bool RotateOnAutoEoi { get; set; }

    private bool NeedsIcw4 { get; set; }

    private bool SingleMode { get; set; }

    public void Reset()
    {
        LastIrr = 0;
        Irr = 0;
        Imr = 0;
        Isr = 0;
        PriorityAdd = 0;
        VectorBase = 0;
        ReadIsr = false;
        Poll = false;
        SpecialMask = false;
        InitState = 0;
        AutoEoi = false;
        RotateOnAutoEoi = false;
        SpecialFullyNested = false;
        NeedsIcw4 = false;
        SingleMode = false;
    }

    /// <summary>Drives input <paramref name="irq"/> (0-7). Edge mode latches rising edges; level mode follows the line.</summary>
    public void SetIrq(int irq, bool level)
    {
        byte mask = (byte)(1 << irq);
        if ((Elcr & mask) != 0)
        {
            Irr = level ? (byte)(Irr | mask) : (byte)(Irr & ~mask);
            LastIrr = level ? (byte)(LastIrr | mask) : (byte)(LastIrr & ~mask);
            return;
        }

        if (level)
        {
            if ((LastIrr & mask) == 0)
            {
                Irr |= mask;
            }

            LastIrr |= mask;
        }
        else
        {
            LastIrr &= (byte)~mask;
        }
    }

    /// <summary>The input that would be serviced next (0-7), or -1: highest priority requested, unmasked and above everything in service.</summary>
    public int GetIrq()
    {
        int priority = GetPriority((byte)(Irr & ~Imr));
        if (priority == 8)
        {
            return -1;
        }

        // In special mask mode, masked inputs do not block lower priorities; in special fully nested
        // mode the master lets the slave interrupt its own in-service cascade input.
        byte inService = Isr;
        if (SpecialMask)
        {
            inService &= (byte)~Imr;
        }

        if (SpecialFullyNested && _isMaster)
        {
            inService &= unchecked((byte)~(1 << 2));
        }

        int currentPriority = GetPriority(inService);
        return priority < currentPriority ? (priority + PriorityAdd) & 7 : -1;
    }

    /// <summary>The INTA bookkeeping for input <paramref name="irq"/>: set ISR (unless auto-EOI), clear an edge request.</summary>
    public void Acknowledge(int irq)
    {
        if (AutoEoi)
        {
            if (RotateOnAutoEoi)
            {
                PriorityAdd = (irq + 1) & 7;
            }
        }
        else
        {
            Isr |= (byte)(1 << irq);
        }

        // A level-triggered request stays until the device drops its line.
        if ((Elcr & (1 << irq)) == 0)
        {
            Irr &= (byte)~(1 << irq);
        }
    }

    /// <summary>Drops both the request and the in-service bit of an input (the master's cascade after a slave poll).</summary>
    public void ClearInput(int irq)
    {
        Irr &= (byte)~(1 << irq);
        Isr &= (byte)~(1 << irq);
    }

    public void WriteCommand(byte value)
    {
        if ((value & 0x10) != 0)
        {
            // ICW1: restart initialisation. Level-triggered mode (bit 3) is not supported by PC chipsets (ELCR is used).
            byte elcr = Elcr;
            Reset();
            Elcr = elcr;
            Irr &= elcr;
            InitState = 1;
            NeedsIcw4 = (value & 1) != 0;
            SingleMode = (value & 2) != 0;
            return;
        }

        if ((value & 0x08) != 0)
        {
            // OCW3.
            if ((value & 0x04) != 0)
            {
                Poll = true;
            }

            if ((value & 0x02) != 0)
            {
                ReadIsr = (value & 1) != 0;
            }

            if ((value & 0x40) != 0)
            {
                SpecialMask = (value & 0x20) != 0;
            }

            return;
        }

        // OCW2.
        int command = value >> 5;
        switch (command)
        {
            case 0: // rotate in auto-EOI mode: clear
            case 4: // rotate in auto-EOI mode: set
                RotateOnAutoEoi = command == 4;
                break;
            case 1: // non-specific EOI
            case 5: // rotate on non-specific EOI
                int priority = GetPriority(Isr);
                if (priority != 8)
                {
                    int irq = (priority + PriorityAdd) & 7;
                    Isr &= (byte)~(1 << irq);
                    if (command == 5)
                    {
                        PriorityAdd = (irq + 1) & 7;
                    }
                }

                break;
            case 3: // specific EOI
                Isr &= (byte)~(1 << (value & 7));
                break;
            case 6: // set priority: the given input becomes the lowest
                PriorityAdd = (value + 1) & 7;
                break;
            case 7: // rotate on specific EOI
                Isr &= (byte)~(1 << (value & 7));
                PriorityAdd = ((value & 7) + 1) & 7;
                break;
            default: // 2: no operation
                break;
        }
    }

    public void WriteData(byte value)
    {
        switch (InitState)
        {
            case 0: // OCW1
                Imr = value;
                break;
            case 1: // ICW2: vector base (the low three bits come from the input number)
                VectorBase = (byte)(value & 0xF8);
                InitState = SingleMode ? (NeedsIcw4 ? 3 : 0) : 2;
                break;
            case 2: // ICW3: cascade wiring; the pair is always wired master IRQ2 = slave
                InitState = NeedsIcw4 ? 3 : 0;
                break;
            case 3: // ICW4
                SpecialFullyNested = (value & 0x10) != 0;
                AutoEoi = (value & 0x02) != 0;
                InitState = 0;
                break;
        }
    }

    /// <summary>Whether the next command-port read is a poll (OCW3 poll command); clears it.</summary>
    public bool TakePoll()
    {
        bool poll = Poll;
        Poll = false;
        return poll;
    }

    public byte ReadCommand() => ReadIsr ? Isr : Irr;

    public byte ReadData() => Imr;

    public void WriteElcr(byte value) => Elcr = (byte)(value & _elcrMask);

    /// <summary>Priority rank (0 highest) of the best input set in <paramref name="mask"/>, 8 if none.</summary>
    private int GetPriority(byte mask)
    {
        if (mask == 0)
        {
            return 8;
        }

        int priority = 0;
        while ((mask & (1 << ((priority + PriorityAdd) & 7))) == 0)
        {
            priority++;
        }

        return priority;
    }

    public void Save(SnapshotWriter w)
    {
        foreach (byte b in (ReadOnlySpan<byte>)[Irr, Isr, Imr, Elcr, VectorBase, LastIrr])
        {
            w.Write(b);
        }

        w.Write(InitState);
        w.Write(PriorityAdd);
        foreach (bool b in (ReadOnlySpan<bool>)[AutoEoi, SpecialFullyNested, ReadIsr, Poll, SpecialMask, RotateOnAutoEoi, NeedsIcw4, SingleMode])
        {
            w.Write(b);
        }
    }

    public void Load(SnapshotReader r)
    {
        Irr = r.ReadByte();
        Isr = r.ReadByte();
        Imr = r.ReadByte();
        Elcr = (byte)(r.ReadByte() & _elcrMask);
        VectorBase = r.ReadByte();
        LastIrr = r.ReadByte();
        InitState = r.ReadInt32();
        PriorityAdd = r.ReadInt32() & 7;
        if (InitState is < 0 or > 3)
        {
            throw r.Invalid($"8259 initialisation state {InitState}");
        }

        AutoEoi = r.ReadBoolean();
        SpecialFullyNested = r.ReadBoolean();
        ReadIsr = r.ReadBoolean();
        Poll = r.ReadBoolean();
        SpecialMask = r.ReadBoolean();
        RotateOnAutoEoi = r.ReadBoolean();
        NeedsIcw4 = r.ReadBoolean();
        SingleMode = r.ReadBoolean();
    }
}
