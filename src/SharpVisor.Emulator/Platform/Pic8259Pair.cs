using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The PC's cascaded 8259A pair: master at ports 0x20-0x21 (IRQ 0-7), slave at 0xA0-0xA1 (IRQ
/// 8-15) on the master's IRQ 2, and the edge/level control registers (ELCR) at 0x4D0-0x4D1.
/// The master's INT output goes to LINT0 of the local APICs (ExtINT, virtual-wire mode) or to the
/// CPU directly when the APIC is disabled; the CPU's INTA cycle is <see cref="AcknowledgeInterrupt"/>.
/// Thread-safe.
/// </summary>
public sealed class Pic8259Pair : IExternalInterruptSource, ISnapshotable
{
    public const ushort MasterBasePort = 0x20;
    public const ushort SlaveBasePort = 0xA0;
    public const ushort ElcrBasePort = 0x4D0;

    /// <summary>The master input the slave's INT output is wired to.</summary>
    public const int CascadeIrq = 2;

    private readonly object _lock = new();
    private readonly object _notifyLock = new();
    private readonly Pic8259 _master = new(isMaster: true);
    private readonly Pic8259 _slave = new(isMaster: false);
    private volatile bool _output;
    private volatile bool _outputChanged;

    public Pic8259Pair()
    {
        MasterPorts = new ChipPorts(this, slave: false);
        SlavePorts = new ChipPorts(this, slave: true);
        ElcrPorts = new ElcrPortDevice(this);
    }

    /// <summary>Ports 0x20 (command) and 0x21 (data).</summary>
    public IPortIoDevice MasterPorts { get; }

    /// <summary>Ports 0xA0 (command) and 0xA1 (data).</summary>
    public IPortIoDevice SlavePorts { get; }

    /// <summary>Ports 0x4D0 (ELCR1, IRQ 0-7) and 0x4D1 (ELCR2, IRQ 8-15).</summary>
    public IPortIoDevice ElcrPorts { get; }

    /// <summary>Called (outside the PIC's lock) when the INT output may have changed, with its current level.</summary>
    public Action<bool>? OutputChanged { get; set; }

    public bool OutputAsserted => _output;

    public void RegisterPorts(PortIoBus bus)
    {
        bus.Register(MasterBasePort, 2, MasterPorts, "pic-master");
        bus.Register(SlaveBasePort, 2, SlavePorts, "pic-slave");
        bus.Register(ElcrBasePort, 2, ElcrPorts, "pic-elcr");
    }

    /// <summary>Drives ISA IRQ <paramref name="irq"/> (0-15; 2 is the cascade and is ignored).</summary>
    public void SetIrq(int irq, bool level)
    {
        if ((uint)irq > 15 || irq == CascadeIrq)
        {
            return;
        }

        lock (_lock)
        {
            (irq < 8 ? _master : _slave).SetIrq(irq & 7, level);
            UpdateOutputLocked();
        }

        NotifyOutput();
    }

    public int? PeekVector()
    {
        lock (_lock)
        {
            int irq = _master.GetIrq();
            if (irq < 0)
            {
                return null;
            }

            if (irq != CascadeIrq)
            {
                return _master.VectorBase + irq;
            }

            int slaveIrq = _slave.GetIrq();
            return _slave.VectorBase + (slaveIrq >= 0 ? slaveIrq : 7);
        }
    }

    /// <summary>
    /// The INTA cycle: returns the vector of the highest-priority request and marks it in service,
    /// or null when the output is not asserted. A request on the cascade that the slave no longer
    /// has yields the slave's spurious IRQ 15 vector (with master IRQ 2 in service), as on hardware.
    /// </summary>
    public int? AcknowledgeInterrupt()
    {
        int vector;
        lock (_lock)
        {
            int irq = _master.GetIrq();
            if (irq < 0)
            {
                return null;
            }

            if (irq == CascadeIrq)
            {
                int slaveIrq = _slave.GetIrq();
                if (slaveIrq >= 0)
                {
                    _slave.Acknowledge(slaveIrq);
                }
                else
                {
                    slaveIrq = 7;
                }

                vector = _slave.VectorBase + slaveIrq;
            }
            else
            {
                vector = _master.VectorBase + irq;
            }

            _master.Acknowledge(irq);
            UpdateOutputLocked();
        }

        NotifyOutput();
        return vector;
    }

    /// <summary>Interrupt mask of both chips (slave in the high byte), for diagnostics.</summary>
    public ushort InterruptMask
    {
        get
        {
            lock (_lock)
            {
                return (ushort)(_master.Imr | (_slave.Imr << 8));
            }
        }
    }

    private void UpdateOutputLocked()
    {
        _master.SetIrq(CascadeIrq, _slave.GetIrq() >= 0);
        bool output = _master.GetIrq() >= 0;
        _outputChanged |= output != _output;
        _output = output;
    }

    /// <summary>
    /// Reports a change of the INT output with its level now. Notifications are serialised and each
    /// reads the latest level, so racing changes end with the listener seeing the truth.
    /// </summary>
    private void NotifyOutput()
    {
        if (!_outputChanged)
        {
            return;
        }

        lock (_notifyLock)
        {
            if (_outputChanged)
            {
                _outputChanged = false;
                OutputChanged?.Invoke(_output);
            }
        }
    }

    private byte ReadChip(bool slave, int port)
    {
        Pic8259 chip = slave ? _slave : _master;
        byte value;
        lock (_lock)
        {
            if (chip.TakePoll())
            {
                value = PollLocked(chip, slave);
            }
            else
            {
                value = port == 0 ? chip.ReadCommand() : chip.ReadData();
            }
        }

        NotifyOutput();
        return value;
    }

    /// <summary>OCW3 poll: acknowledges the chip's highest request, returning 0x80 | input, or 0.</summary>
    private byte PollLocked(Pic8259 chip, bool slave)
    {
        int irq = chip.GetIrq();
        if (irq < 0)
        {
            UpdateOutputLocked();
            return 0;
        }

        chip.Acknowledge(irq);
        if (slave)
        {
            // The master's cascade request was answered by this poll too.
            _master.ClearInput(CascadeIrq);
        }

        UpdateOutputLocked();
        return (byte)(0x80 | irq);
    }

    private void WriteChip(bool slave, int port, byte value)
    {
        lock (_lock)
        {
            Pic8259 chip = slave ? _slave : _master;
            if (port == 0)
            {
                chip.WriteCommand(value);
            }
            else
            {
                chip.WriteData(value);
            }

            UpdateOutputLocked();
        }

        NotifyOutput();
    }

    private byte ReadElcr(int index)
    {
        lock (_lock)
        {
            return (index == 0 ? _master : _slave).Elcr;
        }
    }

    private void WriteElcr(int index, byte value)
    {
        lock (_lock)
        {
            (index == 0 ? _master : _slave).WriteElcr(value);
            UpdateOutputLocked();
        }

        NotifyOutput();
    }

    /// <summary>Command and data ports of one chip; wider accesses are split into bytes on consecutive ports.</summary>
    private sealed class ChipPorts(Pic8259Pair pair, bool slave) : IPortIoDevice
    {
        public void Read(ushort offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = offset + i < 2 ? pair.ReadChip(slave, offset + i) : (byte)0xFF;
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length && offset + i < 2; i++)
            {
                pair.WriteChip(slave, offset + i, data[i]);
            }
        }
    }

    private sealed class ElcrPortDevice(Pic8259Pair pair) : IPortIoDevice
    {
        public void Read(ushort offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = offset + i < 2 ? pair.ReadElcr(offset + i) : (byte)0xFF;
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length && offset + i < 2; i++)
            {
                pair.WriteElcr(offset + i, data[i]);
            }
        }
    }

    public string SnapshotTag => "pic";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            _master.Save(w);
            _slave.Save(w);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            _master.Load(r);
            _slave.Load(r);
            _outputChanged = true;
            UpdateOutputLocked();
        }

        NotifyOutput();
    }
}
