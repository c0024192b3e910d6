using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Emulator.Platform;

/// <summary>
/// One 8254 counter, computed from elapsed input-clock ticks rather than stepped: the count and
/// the OUT pin are functions of the ticks since the count was loaded. Not thread-safe;
/// <see cref="Pit8254"/> serialises access. "now" is always an absolute tick of the 1.193182 MHz clock.
/// </summary>
internal sealed class PitChannel
{
    public const long Never = long.MaxValue;

    // Access modes (control word bits 5:4) and the read/write byte sequencing they imply.
    private const int AccessLsb = 1;
    private const int AccessMsb = 2;
    private const int AccessWord = 3;

    private long _loadTick;
    private long _frozenTicks = -1;
    private int _writeLatch;
    private bool _writeMsbNext;
    private bool _readMsbNext;
    private int _latchedCount;
    private int _countLatchState; // 0: none; AccessLsb/AccessMsb: one byte left; AccessWord: both bytes left
    private byte _status;
    private bool _statusLatched;
    private bool _triggered;

    public PitChannel(bool gate)
    {
        Gate = gate;
        AccessMode = AccessWord;
        Count = 0x10000;
    }

    public int Mode { get; private set; }

    public bool Bcd { get; private set; }

    public int AccessMode { get; private set; }

    /// <summary>The reload value: 1..0x10000 (binary) or 1..10000 (BCD); a written 0 means the maximum.</summary>
    public int Count { get; private set; }

    /// <summary>A count has been written since the control word: the counter runs.</summary>
    public bool Armed { get; private set; }

    public bool Gate { get; private set; }

    private int Modulus => Bcd ? 10000 : 0x10000;

    private bool IsPeriodic => Mode is 2 or 3;

    /// <summary>Control word for this counter (bits 5:4 access, 3:1 mode, 0 BCD); access 0 is a counter latch.</summary>
    public void WriteControl(byte value, long now)
    {
        int access = (value >> 4) & 3;
        if (access == 0)
        {
            LatchCount(now);
            return;
        }

        AccessMode = access;
        int mode = (value >> 1) & 7;
        Mode = mode >= 6 ? mode - 4 : mode;
        Bcd = (value & 1) != 0;
        _writeMsbNext = false;
        _readMsbNext = false;
        _countLatchState = 0;

        // Writing the control word stops the counter until a count is written (null count).
        Armed = false;
        _triggered = false;
    }

    public void WriteData(byte value, long now)
    {
        switch (AccessMode)
        {
            case AccessLsb:
                LoadCount(value, now);
                break;
            case AccessMsb:
                LoadCount(value << 8, now);
                break;
            default:
                if (!_writeMsbNext)
                {
                    _writeLatch = value;
                    _writeMsbNext = true;

                    // In mode 0, writing the first byte stops the count (OUT stays low).
                    if (Mode == 0)
                    {
                        Armed = false;
                    }
                }
                else
                {
                    _writeMsbNext = false;
                    LoadCount(_writeLatch | (value << 8), now);
                }

                break;
        }
    }

    public byte ReadData(long now)
    {
        if (_statusLatched)
        {
            _statusLatched = false;
            return _status;
        }

        if (_countLatchState != 0)
        {
            switch (_countLatchState)
            {
                case AccessLsb:
                    _countLatchState = 0;
                    return (byte)_latchedCount;
                case AccessMsb:
                    _countLatchState = 0;
                    return (byte)(_latchedCount >> 8);
                default:
                    _countLatchState = AccessMsb;
                    return (byte)_latchedCount;
            }
        }

        int count = ReadableCount(now);
        switch (AccessMode)
        {
            case AccessLsb:
                return (byte)count;
            case AccessMsb:
                return (byte)(count >> 8);
            default:
                bool msb = _readMsbNext;
                _readMsbNext = !_readMsbNext;
                return msb ? (byte)(count >> 8) : (byte)count;
        }
    }

    /// <summary>Counter latch command: freezes the count for reading, unless a latched count is still unread.</summary>
    public void LatchCount(long now)
    {
        if (_countLatchState != 0)
        {
            return;
        }

        _latchedCount = ReadableCount(now);
        _countLatchState = AccessMode;
    }

    /// <summary>Read-back status: OUT, null count, access mode, mode, BCD.</summary>
    public void LatchStatus(long now)
    {
        if (_statusLatched)
        {
            return;
        }

        _status = (byte)((GetOutput(now) ? 0x80 : 0) | (Armed ? 0 : 0x40) | (AccessMode << 4) | (Mode << 1) | (Bcd ? 1 : 0));
        _statusLatched = true;
    }

    public void SetGate(bool gate, long now)
    {
        if (gate == Gate)
        {
            return;
        }

        Gate = gate;
        switch (Mode)
        {
            case 0:
            case 4:
                // Gate low suspends counting; high resumes it.
                if (!gate)
                {
                    _frozenTicks = Elapsed(now);
                }
                else if (_frozenTicks >= 0)
                {
                    _loadTick = now - _frozenTicks;
                    _frozenTicks = -1;
                }

                break;
            case 2:
            case 3:
                // Gate low stops the counter with OUT high; the rising edge reloads it.
                if (gate)
                {
                    _loadTick = now;
                }

                break;
            default:
                // Modes 1 and 5 start (or restart) on the rising edge.
                if (gate && Armed)
                {
                    _loadTick = now;
                    _triggered = true;
                }

                break;
        }
    }

    public bool GetOutput(long now)
    {
        if (!Armed)
        {
            return Mode != 0;
        }

        long d = Elapsed(now);
        long n = Count;
        return Mode switch
        {
            0 => d >= n,
            1 => !_triggered || d >= n,
            2 => !Gate || d % n != n - 1,
            3 => !Gate || d % n < (n + 1) >> 1,
            4 => d != n,
            _ => !_triggered || d != n,
        };
    }

    /// <summary>The absolute tick of the next rising edge of OUT after <paramref name="now"/> (the IRQ 0 edge), or <see cref="Never"/>.</summary>
    public long NextInterruptTick(long now)
    {
        if (!Armed || !Gate)
        {
            return Never;
        }

        long d = Elapsed(now);
        long n = Count;
        if (IsPeriodic)
        {
            return _loadTick + (((d / n) + 1) * n);
        }

        if (Mode is 1 or 5 && !_triggered)
        {
            return Never;
        }

        // One-shot modes: terminal count, once.
        return d < n ? _loadTick + n : Never;
    }

    /// <summary>Whether an IRQ edge fell in (<paramref name="since"/>, <paramref name="now"/>].</summary>
    public bool InterruptEdgeBetween(long since, long now)
    {
        long edge = NextInterruptTick(since);
        return edge != Never && edge <= now;
    }

    private long Elapsed(long now)
    {
        if (_frozenTicks >= 0)
        {
            return _frozenTicks;
        }

        if (!Gate && IsPeriodic)
        {
            return 0;
        }

        return Math.Max(0, now - _loadTick);
    }

    private void LoadCount(int raw, long now)
    {
        int value = Bcd ? FromBcd(raw) : raw;
        Count = value == 0 ? Modulus : value;
        Armed = true;
        _loadTick = now;
        _frozenTicks = Gate || Mode is not (0 or 4) ? -1 : 0;
        _triggered = false;
    }

    /// <summary>The counting element as the guest reads it (BCD-encoded in BCD mode).</summary>
    private int ReadableCount(long now)
    {
        if (!Armed)
        {
            return Count & 0xFFFF;
        }

        long d = Elapsed(now);
        long n = Count;
        long value = Mode switch
        {
            2 => n - (d % n),
            3 => n - ((2 * d) % n),
            _ => (n - d) % Modulus,
        };
        if (value < 0)
        {
            value += Modulus;
        }

        int count = (int)(value % Modulus);
        return Bcd ? ToBcd(count) : count;
    }

    private static int FromBcd(int raw) =>
        Math.Min(9, (raw >> 12) & 0xF) * 1000 + Math.Min(9, (raw >> 8) & 0xF) * 100 + Math.Min(9, (raw >> 4) & 0xF) * 10 + Math.Min(9, raw & 0xF);

    private static int ToBcd(int value) =>
        ((value / 1000 % 10) << 12) | ((value / 100 % 10) << 8) | ((value / 10 % 10) << 4) | (value % 10);

    public void Save(SnapshotWriter w)
    {
        w.Write(_loadTick);
        w.Write(_frozenTicks);
        w.Write(_writeLatch);
        w.Write(_writeMsbNext);
        w.Write(_readMsbNext);
        w.Write(_latchedCount);
        w.Write(_countLatchState);
        w.Write(_status);
        w.Write(_statusLatched);
        w.Write(_triggered);
        w.Write(Mode);
        w.Write(Bcd);
        w.Write(AccessMode);
        w.Write(Count);
        w.Write(Armed);
        w.Write(Gate);
    }

    public void Load(SnapshotReader r)
    {
        _loadTick = r.ReadInt64();
        _frozenTicks = r.ReadInt64();
        _writeLatch = r.ReadInt32();
        _writeMsbNext = r.ReadBoolean();
        _readMsbNext = r.ReadBoolean();
        _latchedCount = r.ReadInt32();
        _countLatchState = r.ReadInt32();
        _status = r.ReadByte();
        _statusLatched = r.ReadBoolean();
        _triggered = r.ReadBoolean();
        Mode = r.ReadInt32();
        Bcd = r.ReadBoolean();
        AccessMode = r.ReadInt32();
        Count = r.ReadInt32();
        Armed = r.ReadBoolean();
        Gate = r.ReadBoolean();
        if (Mode is < 0 or > 5 || AccessMode is < 1 or > 3 || Count is < 1 or > 0x10000 || _countLatchState is < 0 or > 3)
        {
            throw r.Invalid("8254 counter values out of range");
        }
    }
}
