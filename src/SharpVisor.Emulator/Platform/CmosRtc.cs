using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The MC146818 CMOS RTC and its NVRAM at ports 0x70 (index, bit 7 masks NMI) and 0x71 (data).
/// Time and date follow the host's clock through the machine's time base (plus whatever offset
/// the guest sets), in BCD or binary and 24- or 12-hour form per register B. Registers A-D behave
/// plausibly (UIP for the 244 µs before each update, register D's valid-RAM bit set), and the
/// periodic, alarm and update-ended interrupts raise ISA IRQ 8 when the vCPU loop calls
/// <see cref="Poll"/>. The memory-size bytes are laid out as SeaBIOS reads them from QEMU. Thread-safe.
/// </summary>
public sealed class CmosRtc : ISnapshotable
{
    public const ushort BasePort = 0x70;
    public const uint Irq = 8;

    public const int RegisterSeconds = 0x00;
    public const int RegisterSecondsAlarm = 0x01;
    public const int RegisterMinutes = 0x02;
    public const int RegisterMinutesAlarm = 0x03;
    public const int RegisterHours = 0x04;
    public const int RegisterHoursAlarm = 0x05;
    public const int RegisterDayOfWeek = 0x06;
    public const int RegisterDayOfMonth = 0x07;
    public const int RegisterMonth = 0x08;
    public const int RegisterYear = 0x09;
    public const int RegisterA = 0x0A;
    public const int RegisterB = 0x0B;
    public const int RegisterC = 0x0C;
    public const int RegisterD = 0x0D;
    public const int RegisterCentury = 0x32;

    // Register A.
    public const byte UpdateInProgress = 0x80;

    // Register B.
    public const byte SetClock = 0x80;
    public const byte PeriodicInterruptEnable = 0x40;
    public const byte AlarmInterruptEnable = 0x20;
    public const byte UpdateEndedInterruptEnable = 0x10;
    public const byte BinaryMode = 0x04;
    public const byte Hour24Mode = 0x02;

    // Register C.
    public const byte InterruptRequestFlag = 0x80;
    public const byte PeriodicFlag = 0x40;
    public const byte AlarmFlag = 0x20;
    public const byte UpdateEndedFlag = 0x10;

    // Register D.
    public const byte ValidRamAndTime = 0x80;

    /// <summary>UIP is set this long before each update, as the MC146818 data sheet gives it.</summary>
    public const long UpdateInProgressNs = 244_000;

    private const int Size = 128;
    private const long NanosecondsPerSecond = PlatformTimeBase.NanosecondsPerSecond;
    private const string LogSource = "rtc";

    private readonly object _lock = new();
    private readonly PlatformTimeBase _time;
    private readonly IInterruptController? _interrupts;
    private readonly PlatformLog _log;
    private readonly byte[] _cmos = new byte[Size];
    private int _index;
    private TimeSpan _offset;
    private long _lastUpdateSecond;
    private long _lastPeriodIndex;
    private long _nextDeadline = long.MaxValue;

    public CmosRtc(PlatformTimeBase time, IInterruptController? interrupts, PlatformLog? log = null)
    {
        _time = time;
        _interrupts = interrupts;
        _log = log ?? PlatformLog.Null;
        _cmos[RegisterA] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
        _cmos[RegisterB] = Hour24Mode;
        _cmos[RegisterD] = ValidRamAndTime;
        long now = time.NowNanoseconds;
        _lastUpdateSecond = RtcSecond(now);
        _lastPeriodIndex = long.MaxValue;
        Ports = new IndexDataPorts(this);
    }

    /// <summary>Ports 0x70 (index) and 0x71 (data).</summary>
    public IPortIoDevice Ports { get; }

    /// <summary>Bit 7 of the last index written: the guest asked for NMIs to be masked.</summary>
    public bool NmiMasked { get; private set; }

    /// <summary>Virtual nanosecond of the next enabled interrupt (<see cref="long.MaxValue"/> if none).</summary>
    public long NextDeadline => Volatile.Read(ref _nextDeadline);

    /// <summary>The date and time the guest currently sees.</summary>
    public DateTime GuestTime
    {
        get
        {
            lock (_lock)
            {
                return RtcTime(_time.NowNanoseconds);
            }
        }
    }

    public void RegisterPorts(PortIoBus bus) => bus.Register(BasePort, 2, Ports, "cmos-rtc");

    /// <summary>
    /// Records the RAM size where firmware looks for it: base memory (0x15-0x16, KiB), extended
    /// memory above 1 MiB (0x17-0x18 and 0x30-0x31, KiB, capped at 0xFFFF), memory between 16 MiB
    /// and 4 GiB (0x34-0x35, 64 KiB units) and above 4 GiB (0x5B-0x5D, 64 KiB units).
    /// </summary>
    public void SetMemorySize(ulong belowFourGiB, ulong aboveFourGiB)
    {
        const ulong KiB = 1024;
        const ulong MiB = 1024 * KiB;
        lock (_lock)
        {
            ulong baseKiB = Math.Min(belowFourGiB / KiB, 640);
            SetWord(0x15, baseKiB);

            ulong extendedKiB = belowFourGiB > MiB ? Math.Min((belowFourGiB - MiB) / KiB, 0xFFFF) : 0;
            SetWord(0x17, extendedKiB);
            SetWord(0x30, extendedKiB);

            ulong above16MiB = belowFourGiB > 16 * MiB ? Math.Min((belowFourGiB - (16 * MiB)) / (64 * KiB), 0xFFFF) : 0;
            SetWord(0x34, above16MiB);

            ulong high = Math.Min(aboveFourGiB / (64 * KiB), 0xFF_FFFF);
            _cmos[0x5B] = (byte)high;
            _cmos[0x5C] = (byte)(high >> 8);
            _cmos[0x5D] = (byte)(high >> 16);
        }
    }

    /// <summary>Records the guest's RAM (writable regions) below and above 4 GiB.</summary>
    public void SetMemorySize(GuestMemory memory)
    {
        ulong below = 0;
        ulong above = 0;
        foreach (MemoryRegion region in memory.Regions)
        {
            if (region.ReadOnly)
            {
                continue;
            }

            ulong end = region.GuestPhysicalAddress + region.Size;
            ulong lowEnd = Math.Min(end, GuestMemory.HighMemoryStart);
            if (region.GuestPhysicalAddress < lowEnd)
            {
                below += lowEnd - region.GuestPhysicalAddress;
            }

            above += region.Size - (region.GuestPhysicalAddress < lowEnd ? lowEnd - region.GuestPhysicalAddress : 0);
        }

        SetMemorySize(below, above);
    }

    /// <summary>Byte 0x5F: the number of CPUs minus one (SeaBIOS reads it).</summary>
    public void SetCpuCount(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 256);
        lock (_lock)
        {
            _cmos[0x5F] = (byte)(count - 1);
        }
    }

    /// <summary>Reads a register as the guest would (index 0-127), without side effects on register C.</summary>
    public byte ReadRegister(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Size);
        lock (_lock)
        {
            return index == RegisterC ? _cmos[RegisterC] : ReadLocked(index, _time.NowNanoseconds);
        }
    }

    /// <summary>Raises IRQ 8 for periodic, alarm and update-ended events that are due.</summary>
    public void Poll()
    {
        long deadline = Volatile.Read(ref _nextDeadline);
        if (deadline == long.MaxValue || _time.NowNanoseconds < deadline)
        {
            return;
        }

        bool raise;
        lock (_lock)
        {
            raise = UpdateFlagsLocked(_time.NowNanoseconds);
        }

        RaiseIfNeeded(raise);
    }

    private void SetWord(int index, ulong value)
    {
        _cmos[index] = (byte)value;
        _cmos[index + 1] = (byte)(value >> 8);
    }

    private bool IsBinary => (_cmos[RegisterB] & BinaryMode) != 0;

    private bool Is24Hour => (_cmos[RegisterB] & Hour24Mode) != 0;

    private bool IsSetMode => (_cmos[RegisterB] & SetClock) != 0;

    /// <summary>The oscillator runs only with the normal 32.768 kHz divider (010 in register A bits 6:4).</summary>
    private bool IsRunning => (_cmos[RegisterA] & 0x70) == 0x20 && !IsSetMode;

    /// <summary>The RTC's time; a guest-set date near year 9999 saturates instead of overflowing.</summary>
    private DateTime RtcTime(long now)
    {
        long ticks = _time.WallClockAt(now).UtcDateTime.Ticks + _offset.Ticks;
        return new DateTime(Math.Clamp(ticks, 0, DateTime.MaxValue.Ticks), DateTimeKind.Utc);
    }

    private long RtcSecond(long now) => RtcTime(now).Ticks / TimeSpan.TicksPerSecond;

    private byte Encode(int value) => IsBinary ? (byte)value : (byte)(((value / 10) << 4) | (value % 10));

    private int Decode(byte value) => IsBinary ? value : ((value >> 4) * 10) + (value & 0xF);

    private byte EncodeHour(int hour)
    {
        if (Is24Hour)
        {
            return Encode(hour);
        }

        int hour12 = hour % 12 == 0 ? 12 : hour % 12;
        return (byte)(Encode(hour12) | (hour >= 12 ? 0x80 : 0));
    }

    private int DecodeHour(byte value)
    {
        if (Is24Hour)
        {
            return Decode(value);
        }

        int hour12 = Decode((byte)(value & 0x7F)) % 12;
        return (value & 0x80) != 0 ? hour12 + 12 : hour12;
    }

    private byte ReadLocked(int index, long now)
    {
        if (IsTimeRegister(index) && !IsSetMode)
        {
            DateTime time = RtcTime(now);
            return index == RegisterCentury ? Encode(time.Year / 100) : TimeRegister(index, time);
        }

        if (index == RegisterA)
        {
            byte value = (byte)(_cmos[RegisterA] & 0x7F);
            long phase = RtcTime(now).Ticks % TimeSpan.TicksPerSecond * 100;
            if (IsRunning && phase >= NanosecondsPerSecond - UpdateInProgressNs)
            {
                value |= UpdateInProgress;
            }

            return value;
        }

        return _cmos[index];
    }

    private byte TimeRegister(int index, DateTime time) => index switch
    {
        RegisterSeconds => Encode(time.Second),
        RegisterMinutes => Encode(time.Minute),
        RegisterHours => EncodeHour(time.Hour),
        RegisterDayOfWeek => Encode((int)time.DayOfWeek + 1),
        RegisterDayOfMonth => Encode(time.Day),
        RegisterMonth => Encode(time.Month),
        RegisterYear => Encode(time.Year % 100),
        _ => 0,
    };

    private byte ReadDataLocked(long now)
    {
        if (_index != RegisterC)
        {
            return ReadLocked(_index, now);
        }

        // Reading C returns the pending flags, clears them and releases IRQ 8.
        UpdateFlagsLocked(now);
        byte flags = _cmos[RegisterC];
        _cmos[RegisterC] = 0;
        UpdateDeadlineLocked(now);
        return flags;
    }

    private void WriteDataLocked(byte value, long now)
    {
        switch (_index)
        {
            case RegisterA:
                UpdateFlagsLocked(now);
                _cmos[RegisterA] = (byte)(value & 0x7F);
                _lastPeriodIndex = long.MaxValue;
                break;
            case RegisterB:
                WriteRegisterBLocked(value, now);
                break;
            case RegisterC:
            case RegisterD:
                // Read-only.
                break;
            default:
                if (IsTimeRegister(_index) && !IsSetMode)
                {
                    // Without SET (Linux always holds it), a time register write takes effect at once, as in QEMU.
                    FreezeTimeLocked(now);
                    _cmos[_index] = value;
                    ApplyGuestTimeLocked(now);
                    break;
                }

                _cmos[_index] = value;
                break;
        }

        UpdateDeadlineLocked(now);
    }

    private void WriteRegisterBLocked(byte value, long now)
    {
        bool wasSet = IsSetMode;
        bool set = (value & SetClock) != 0;
        if (set && !wasSet)
        {
            // Freeze the current time into the registers for the guest to edit.
            FreezeTimeLocked(now);

            // Setting SET clears UIE, as on the MC146818.
            value &= unchecked((byte)~UpdateEndedInterruptEnable);
        }

        UpdateFlagsLocked(now);
        _cmos[RegisterB] = value;
        if (wasSet && !set)
        {
            ApplyGuestTimeLocked(now);
        }
    }

    private static bool IsTimeRegister(int index) =>
        index is RegisterSeconds or RegisterMinutes or RegisterHours or RegisterDayOfWeek or RegisterDayOfMonth
            or RegisterMonth or RegisterYear or RegisterCentury;

    /// <summary>Copies the running time into the time registers (in the current format).</summary>
    private void FreezeTimeLocked(long now)
    {
        DateTime time = RtcTime(now);
        foreach (int index in (ReadOnlySpan<int>)[RegisterSeconds, RegisterMinutes, RegisterHours, RegisterDayOfWeek, RegisterDayOfMonth, RegisterMonth, RegisterYear])
        {
            _cmos[index] = TimeRegister(index, time);
        }

        _cmos[RegisterCentury] = Encode(time.Year / 100);
    }

    /// <summary>SET was released: the registers the guest wrote become the clock's new time.</summary>
    private void ApplyGuestTimeLocked(long now)
    {
        try
        {
            int century = Decode(_cmos[RegisterCentury]);
            int year = Decode(_cmos[RegisterYear]);
            if (century < 19 || century > 99)
            {
                century = year < 70 ? 20 : 19;
            }

            var time = new DateTime(
                (century * 100) + year,
                Decode(_cmos[RegisterMonth]),
                Decode(_cmos[RegisterDayOfMonth]),
                DecodeHour(_cmos[RegisterHours]),
                Decode(_cmos[RegisterMinutes]),
                Decode(_cmos[RegisterSeconds]),
                DateTimeKind.Utc);
            _offset = time - _time.WallClockAt(now).UtcDateTime;
            _lastUpdateSecond = RtcSecond(now);
        }
        catch (ArgumentOutOfRangeException)
        {
            _log.Warn(LogSource, "guest set an invalid date or time; the clock keeps its previous time");
        }
    }

    /// <summary>Sets the flags of register C for events up to <paramref name="now"/>; true when IRQ 8 must be raised.</summary>
    private bool UpdateFlagsLocked(long now)
    {
        byte flags = _cmos[RegisterC];
        if (IsRunning)
        {
            long second = RtcSecond(now);
            if (second > _lastUpdateSecond)
            {
                _lastUpdateSecond = second;
                flags |= UpdateEndedFlag;
                if (AlarmMatches(RtcTime(now)))
                {
                    flags |= AlarmFlag;
                }
            }
        }
        else
        {
            _lastUpdateSecond = RtcSecond(now);
        }

        long period = PeriodNanoseconds();
        if (period > 0)
        {
            long index = now / period;
            if (_lastPeriodIndex == long.MaxValue)
            {
                _lastPeriodIndex = index;
            }
            else if (index > _lastPeriodIndex)
            {
                _lastPeriodIndex = index;
                flags |= PeriodicFlag;
            }
        }

        bool raise = false;
        if ((flags & _cmos[RegisterB] & (PeriodicFlag | AlarmFlag | UpdateEndedFlag)) != 0 && (flags & InterruptRequestFlag) == 0)
        {
            flags |= InterruptRequestFlag;
            raise = true;
        }

        _cmos[RegisterC] = flags;
        UpdateDeadlineLocked(now);
        return raise;
    }

    private bool AlarmMatches(DateTime time)
    {
        // An alarm byte with its top two bits set matches any value.
        static bool Matches(byte alarm, byte current) => (alarm & 0xC0) == 0xC0 || alarm == current;

        return Matches(_cmos[RegisterSecondsAlarm], TimeRegister(RegisterSeconds, time))
            && Matches(_cmos[RegisterMinutesAlarm], TimeRegister(RegisterMinutes, time))
            && Matches(_cmos[RegisterHoursAlarm], TimeRegister(RegisterHours, time));
    }

    /// <summary>The periodic interrupt's period from register A's rate (0: off; rates 1 and 2 alias 8 and 9).</summary>
    private long PeriodNanoseconds()
    {
        int rate = _cmos[RegisterA] & 0xF;
        if (rate == 0 || (_cmos[RegisterA] & 0x70) != 0x20)
        {
            return 0;
        }

        if (rate <= 2)
        {
            rate += 7;
        }

        // 32768 Hz >> (rate - 1).
        return (NanosecondsPerSecond << (rate - 1)) / 32768;
    }

    private void UpdateDeadlineLocked(long now)
    {
        long deadline = long.MaxValue;
        byte enables = _cmos[RegisterB];
        if ((_cmos[RegisterC] & InterruptRequestFlag) == 0)
        {
            if ((enables & (UpdateEndedInterruptEnable | AlarmInterruptEnable)) != 0 && IsRunning)
            {
                long phase = RtcTime(now).Ticks % TimeSpan.TicksPerSecond * 100;
                deadline = now + (NanosecondsPerSecond - phase);
            }

            long period = PeriodNanoseconds();
            if ((enables & PeriodicInterruptEnable) != 0 && period > 0)
            {
                deadline = Math.Min(deadline, ((now / period) + 1) * period);
            }
        }

        Volatile.Write(ref _nextDeadline, deadline);
    }

    private void RaiseIfNeeded(bool raise)
    {
        if (raise)
        {
            _interrupts?.SetIrqLevel(Irq, true);
        }
    }

    private byte ReadData()
    {
        byte value;
        bool lower;
        lock (_lock)
        {
            bool pending = (_cmos[RegisterC] & InterruptRequestFlag) != 0;
            value = ReadDataLocked(_time.NowNanoseconds);
            lower = pending && _index == RegisterC;
        }

        if (lower)
        {
            _interrupts?.SetIrqLevel(Irq, false);
        }

        return value;
    }

    private void WriteData(byte value)
    {
        bool raise;
        lock (_lock)
        {
            long now = _time.NowNanoseconds;
            WriteDataLocked(value, now);
            raise = UpdateFlagsLocked(now);
        }

        RaiseIfNeeded(raise);
    }

    private void WriteIndex(byte value)
    {
        lock (_lock)
        {
            NmiMasked = (value & 0x80) != 0;
            _index = value & 0x7F;
        }
    }

    private sealed class IndexDataPorts(CmosRtc rtc) : IPortIoDevice
    {
        public void Read(ushort offset, Span<byte> data)
        {
            data.Fill(0xFF);
            if (offset == 1 && data.Length > 0)
            {
                data[0] = rtc.ReadData();
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            if (data.Length == 0)
            {
                return;
            }

            if (offset == 0)
            {
                rtc.WriteIndex(data[0]);
                if (data.Length > 1)
                {
                    rtc.WriteData(data[1]);
                }
            }
            else
            {
                rtc.WriteData(data[0]);
            }
        }
    }

    public string SnapshotTag => "cmos-rtc";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            w.WriteBytes(_cmos);
            w.Write(_index);
            w.Write(_offset.Ticks);
            w.Write(_lastUpdateSecond);
            w.Write(_lastPeriodIndex);
            w.Write(_nextDeadline);
            w.Write(NmiMasked);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            r.ReadBytes(_cmos.Length).CopyTo(_cmos, 0);
            _index = r.ReadInt32() & (Size - 1);
            _offset = TimeSpan.FromTicks(r.ReadInt64());
            _lastUpdateSecond = r.ReadInt64();
            _lastPeriodIndex = r.ReadInt64();
            _nextDeadline = r.ReadInt64();
            NmiMasked = r.ReadBoolean();
        }
    }
}
