using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Boot.Acpi;

/// <summary>
/// The ACPI fixed-hardware register block the FADT points at, on I/O ports:
/// <code>
/// base+0x0 PM1a_STS (16-bit, write-one-to-clear)   base+0x2 PM1a_EN (16-bit)
/// base+0x4 PM1a_CNT (16-bit: SCI_EN, SLP_TYP, SLP_EN)
/// base+0x8 PM_TMR   (32-bit, 3.579545 MHz)          base+0xC RESET (write 0x01)
/// </code>
/// Linux's poweroff writes SLP_TYP=S5 with SLP_EN, which powers the machine off; SLP_TYP=S3
/// suspends to RAM (<see cref="SuspendToRam"/>: the VMM resumes it at the FACS waking vector); the reset
/// register resets it; <see cref="PressPowerButton"/> raises the fixed power-button event
/// (PWRBTN_STS, and SCI while PWRBTN_EN is set) so the guest can shut down gracefully.
/// </summary>
public sealed class AcpiPmDevice : IPortIoDevice, ISnapshotable
{
    public const ushort DefaultBasePort = 0x600;
    public const byte DefaultSciIrq = 9;
    public const ushort PortCount = 16;

    public const int Pm1EventOffset = 0x0;
    public const int Pm1ControlOffset = 0x4;
    public const int PmTimerOffset = 0x8;
    public const int ResetOffset = 0xC;
    public const byte Pm1EventLength = 4;
    public const byte Pm1ControlLength = 2;
    public const byte PmTimerLength = 4;
    public const byte ResetValue = 0x01;

    /// <summary>SLP_TYP for soft-off, as the DSDT's \_S5 package says.</summary>
    public const byte S5SleepType = 5;

    /// <summary>SLP_TYP for suspend to RAM, as the DSDT's \_S3 package says (QEMU's value).</summary>
    public const byte S3SleepType = 1;

    public const ushort TimerStatus = 1 << 0;
    public const ushort GlobalStatus = 1 << 5;
    public const ushort PowerButtonStatus = 1 << 8;
    public const ushort SleepButtonStatus = 1 << 9;
    public const ushort RtcStatus = 1 << 10;
    public const ushort WakeStatus = 1 << 15;

    public const ushort SciEnable = 1 << 0;
    public const ushort SleepEnable = 1 << 13;

    public const long TimerFrequency = 3_579_545;

    private const ushort EventBits = TimerStatus | GlobalStatus | PowerButtonStatus | SleepButtonStatus | RtcStatus;

    private readonly MachineControl _control;
    private readonly InterruptLine _sci;
    private readonly object _lock = new();
    private readonly TimeProvider _clock;
    private long _timerStart;
    private ushort _status;
    private ushort _enable;
    private ushort _control1 = SciEnable;
    private bool _sciLevel;

    /// <param name="clock">Where PM_TMR takes its time (the system's monotonic clock by default; tests pass a virtual one).</param>
    public AcpiPmDevice(MachineControl control, InterruptLine sci, TimeProvider? clock = null)
    {
        _control = control;
        _sci = sci;
        _clock = clock ?? TimeProvider.System;
        _timerStart = _clock.GetTimestamp();
    }

    /// <summary>
    /// PM_TMR now: ticks of 3.579545 MHz since the device was created, modulo 2^32. The product
    /// of elapsed timestamp ticks (nanoseconds on Linux) and 3,579,545 overflows 64 bits after
    /// about 43 minutes, so it is computed in 128 bits, as the emulator does for the TSC.
    /// </summary>
    public uint TimerValue
    {
        get
        {
            long elapsed = _clock.GetTimestamp() - Volatile.Read(ref _timerStart);
            return (uint)(ulong)((Int128)elapsed * TimerFrequency / _clock.TimestampFrequency);
        }
    }

    /// <summary>Where guest mistakes (an unsupported sleep state) are reported.</summary>
    public GuestLog? Log { get; set; }

    /// <summary>
    /// Called (on the writing vCPU's thread, without the device's lock) when the guest enters S3:
    /// the VMM stops the vCPUs and resumes the machine through the FACS waking vector, then calls
    /// <see cref="Wake"/>. Without it S3 is refused as unsupported.
    /// </summary>
    public Action? SuspendToRam { get; set; }

    /// <summary>The machine woke from a sleep state: WAK_STS is set in PM1_STS, as firmware leaves it.</summary>
    public void Wake()
    {
        lock (_lock)
        {
            _status |= WakeStatus;
        }
    }

    public ushort Pm1Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    public ushort Pm1Enable
    {
        get
        {
            lock (_lock)
            {
                return _enable;
            }
        }
    }

    public bool SciAsserted
    {
        get
        {
            lock (_lock)
            {
                return _sciLevel;
            }
        }
    }

    /// <summary>The control plane's graceful shutdown request: a fixed-feature power-button press.</summary>
    public void PressPowerButton()
    {
        lock (_lock)
        {
            _status |= PowerButtonStatus;
            UpdateSci();
        }
    }

    public void Read(ushort offset, Span<byte> data)
    {
        uint timer = TimerValue;
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                int o = offset + i;
                data[i] = o switch
                {
                    0 or 1 => (byte)(_status >> (8 * o)),
                    2 or 3 => (byte)(_enable >> (8 * (o - 2))),
                    4 or 5 => (byte)((_control1 & ~SleepEnable) >> (8 * (o - 4))),
                    >= 8 and < 12 => (byte)(timer >> (8 * (o - 8))),
                    _ => 0,
                };
            }
        }
    }

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        bool powerOff = false;
        bool reset = false;
        bool suspend = false;
        lock (_lock)
        {
            ushort controlWritten = _control1;
            bool controlTouched = false;
            for (int i = 0; i < data.Length; i++)
            {
                int o = offset + i;
                byte value = data[i];
                switch (o)
                {
                    case 0 or 1:
                        _status &= (ushort)~(value << (8 * o));
                        break;
                    case 2 or 3:
                        int shift = 8 * (o - 2);
                        _enable = (ushort)((_enable & ~(0xFF << shift)) | (value << shift));
                        break;
                    case 4 or 5:
                        int s = 8 * (o - 4);
                        controlWritten = (ushort)((controlWritten & ~(0xFF << s)) | (value << s));
                        controlTouched = true;
                        break;
                    case ResetOffset:
                        reset |= value == ResetValue;
                        break;
                }
            }

            if (controlTouched)
            {
                // SCI_EN stays set: there is no legacy (non-ACPI) mode to return to.
                _control1 = (ushort)((controlWritten & ~SleepEnable) | SciEnable);
                if ((controlWritten & SleepEnable) != 0)
                {
                    int sleepType = (controlWritten >> 10) & 7;
                    if (sleepType == S5SleepType)
                    {
                        powerOff = true;
                    }
                    else if (sleepType == S3SleepType && SuspendToRam is not null)
                    {
                        suspend = true;
                    }
                    else
                    {
                        Log?.Write($"acpi: guest asked for unsupported sleep type {sleepType}; ignored");
                    }
                }
            }

            UpdateSci();
        }

        if (powerOff)
        {
            _control.PowerOff("guest entered ACPI S5 (soft off)");
        }

        if (suspend)
        {
            SuspendToRam!();
        }

        if (reset)
        {
            _control.Reset("guest wrote the ACPI reset register");
        }
    }

    private void UpdateSci()
    {
        bool level = (_status & _enable & EventBits) != 0;
        if (level != _sciLevel)
        {
            _sciLevel = level;
            _sci.Set(level);
        }
    }

    public string SnapshotTag => "acpi-pm";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            w.Write(_status);
            w.Write(_enable);
            w.Write(_control1);
            w.Write(_sciLevel);
            w.Write(TimerValue);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            _status = r.ReadUInt16();
            _enable = r.ReadUInt16();
            _control1 = r.ReadUInt16();
            _sciLevel = r.ReadBoolean();

            // PM_TMR goes on from the saved count: the start moves back by the time it stands for.
            uint timer = r.ReadUInt32();
            long ticks = (long)((((Int128)timer * _clock.TimestampFrequency) + TimerFrequency - 1) / TimerFrequency); // rounded up: never reads back one less
            Volatile.Write(ref _timerStart, _clock.GetTimestamp() - ticks);
        }
    }
}
