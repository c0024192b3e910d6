using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The 8254 programmable interval timer at ports 0x40-0x43, clocked at 1.193182 MHz from the
/// machine's virtual time, and port 0x61 (system control port B: channel 2 gate, speaker enable,
/// refresh toggle, channel 2 OUT). Channel 0's OUT drives ISA IRQ 0: each rising edge is a pulse
/// on the interrupt controller, raised when the vCPU loop calls <see cref="Poll"/> (at the latest
/// at <see cref="NextDeadline"/>); periods missed in between coalesce into one interrupt, as with
/// KVM's PIT without reinjection. Thread-safe.
/// </summary>
public sealed class Pit8254 : ISnapshotable
{
    public const long FrequencyHz = 1_193_182;
    public const ushort BasePort = 0x40;
    public const ushort ControlPort = 0x43;
    public const ushort SystemControlPort = 0x61;

    /// <summary>The ISA IRQ channel 0 drives.</summary>
    public const uint Irq = 0;

    // Port 0x61 bits.
    public const byte Gate2 = 0x01;
    public const byte SpeakerDataEnable = 0x02;
    public const byte RefreshToggle = 0x10;
    public const byte Out2 = 0x20;

    /// <summary>Port 0x61 bit 4 toggles every 15.085 µs (DRAM refresh), which old delay loops watch.</summary>
    private const long RefreshPeriodNs = 15_085;

    private readonly object _lock = new();
    private readonly PlatformTimeBase _time;
    private readonly IInterruptController? _interrupts;
    private readonly PitChannel[] _channels = [new(gate: true), new(gate: true), new(gate: false)];
    private long _lastPollTick;
    private long _nextInterruptTick = PitChannel.Never;
    private byte _systemControl;

    /// <param name="time">The machine's time base.</param>
    /// <param name="interrupts">Where channel 0 raises IRQ 0 (null: no interrupt wired, as in unit tests of channel 2).</param>
    public Pit8254(PlatformTimeBase time, IInterruptController? interrupts)
    {
        _time = time;
        _interrupts = interrupts;
        Ports = new CounterPorts(this);
        SystemControlPortDevice = new SystemControlDevice(this);
    }

    /// <summary>Ports 0x40-0x42 (counters) and 0x43 (control word).</summary>
    public IPortIoDevice Ports { get; }

    /// <summary>Port 0x61.</summary>
    public IPortIoDevice SystemControlPortDevice { get; }

    /// <summary>Virtual nanosecond of channel 0's next IRQ edge (<see cref="long.MaxValue"/> if none).</summary>
    public long NextDeadline
    {
        get
        {
            long tick = Volatile.Read(ref _nextInterruptTick);
            return tick == PitChannel.Never ? long.MaxValue : TickToNanoseconds(tick);
        }
    }

    public void RegisterPorts(PortIoBus bus)
    {
        bus.Register(BasePort, 4, Ports, "pit");
        bus.Register(SystemControlPort, 1, SystemControlPortDevice, "port61");
    }

    /// <summary>Raises IRQ 0 if channel 0's OUT had a rising edge since the last poll. Cheap when nothing is due.</summary>
    public void Poll()
    {
        if (Volatile.Read(ref _nextInterruptTick) == PitChannel.Never)
        {
            return;
        }

        if (CurrentTick() < Volatile.Read(ref _nextInterruptTick))
        {
            return;
        }

        bool fire;
        lock (_lock)
        {
            // Read the clock under the lock so concurrent polls see monotonic ticks and fire each edge once.
            long now = CurrentTick();
            fire = _channels[0].InterruptEdgeBetween(_lastPollTick, now);
            _lastPollTick = now;
            UpdateNextInterruptLocked(now);
        }

        if (fire && _interrupts is not null)
        {
            // An edge, as KVM's PIT delivers it: assert, then de-assert.
            _interrupts.SetIrqLevel(Irq, true);
            _interrupts.SetIrqLevel(Irq, false);
        }
    }

    /// <summary>Channel <paramref name="channel"/>'s OUT pin now.</summary>
    public bool GetOutput(int channel)
    {
        lock (_lock)
        {
            return _channels[channel].GetOutput(CurrentTick());
        }
    }

    private long CurrentTick() => (long)((Int128)_time.NowNanoseconds * FrequencyHz / PlatformTimeBase.NanosecondsPerSecond);

    private static long TickToNanoseconds(long tick) =>
        (long)((((Int128)tick * PlatformTimeBase.NanosecondsPerSecond) + FrequencyHz - 1) / FrequencyHz);

    private void UpdateNextInterruptLocked(long now) =>
        Volatile.Write(ref _nextInterruptTick, _interrupts is null ? PitChannel.Never : _channels[0].NextInterruptTick(now));

    private byte ReadCounterPort(int port)
    {
        lock (_lock)
        {
            return port < 3 ? _channels[port].ReadData(CurrentTick()) : (byte)0;
        }
    }

    private void WriteCounterPort(int port, byte value)
    {
        lock (_lock)
        {
            long now = CurrentTick();

            // Deliver an edge that was due before the reprogramming, then start afresh.
            bool fire = _channels[0].InterruptEdgeBetween(_lastPollTick, now);
            if (port < 3)
            {
                _channels[port].WriteData(value, now);
            }
            else
            {
                WriteControlLocked(value, now);
            }

            _lastPollTick = now;
            UpdateNextInterruptLocked(now);
            if (!fire)
            {
                return;
            }
        }

        if (_interrupts is not null)
        {
            _interrupts.SetIrqLevel(Irq, true);
            _interrupts.SetIrqLevel(Irq, false);
        }
    }

    private void WriteControlLocked(byte value, long now)
    {
        int channel = value >> 6;
        if (channel != 3)
        {
            _channels[channel].WriteControl(value, now);
            return;
        }

        // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 1-3 select counters.
        for (int i = 0; i < 3; i++)
        {
            if ((value & (2 << i)) == 0)
            {
                continue;
            }

            if ((value & 0x20) == 0)
            {
                _channels[i].LatchCount(now);
            }

            if ((value & 0x10) == 0)
            {
                _channels[i].LatchStatus(now);
            }
        }
    }

    private byte ReadSystemControl()
    {
        long ns = _time.NowNanoseconds;
        lock (_lock)
        {
            byte value = (byte)(_systemControl & 0x0F);
            if ((ns / RefreshPeriodNs & 1) != 0)
            {
                value |= RefreshToggle;
            }

            if (_channels[2].GetOutput(CurrentTick()))
            {
                value |= Out2;
            }

            return value;
        }
    }

    private void WriteSystemControl(byte value)
    {
        lock (_lock)
        {
            // Bits 0-3 are writable (gate 2, speaker, parity and channel-check NMI enables); the rest read status.
            _systemControl = (byte)(value & 0x0F);
            _channels[2].SetGate((value & Gate2) != 0, CurrentTick());
        }
    }

    private sealed class CounterPorts(Pit8254 pit) : IPortIoDevice
    {
        public void Read(ushort offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = offset + i < 4 ? pit.ReadCounterPort(offset + i) : (byte)0xFF;
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            for (int i = 0; i < data.Length && offset + i < 4; i++)
            {
                pit.WriteCounterPort(offset + i, data[i]);
            }
        }
    }

    private sealed class SystemControlDevice(Pit8254 pit) : IPortIoDevice
    {
        public void Read(ushort offset, Span<byte> data)
        {
            data.Fill(0xFF);
            if (offset == 0 && data.Length > 0)
            {
                data[0] = pit.ReadSystemControl();
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            if (offset == 0 && data.Length > 0)
            {
                pit.WriteSystemControl(data[0]);
            }
        }
    }

    public string SnapshotTag => "pit";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            foreach (PitChannel channel in _channels)
            {
                channel.Save(w);
            }

            w.Write(_lastPollTick);
            w.Write(_systemControl);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            foreach (PitChannel channel in _channels)
            {
                channel.Load(r);
            }

            _lastPollTick = r.ReadInt64();
            _systemControl = r.ReadByte();
            UpdateNextInterruptLocked(CurrentTick());
        }
    }
}
