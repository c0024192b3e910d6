using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// kvmclock (pvclock), as KVM provides it: the guest writes the address of a wall-clock structure
/// to MSR_KVM_WALL_CLOCK_NEW and of a per-vCPU <c>pvclock_vcpu_time_info</c> to
/// MSR_KVM_SYSTEM_TIME_NEW (bit 0 enables), and computes time without exits as
/// <c>system_time + ((tsc - tsc_timestamp) &lt;&lt; shift) * mul &gt;&gt; 32</c>. The virtual TSC and the
/// nanosecond clock come from one <see cref="PlatformTimeBase"/>, so one publication stays exact and
/// PVCLOCK_TSC_STABLE_BIT holds. Guest-supplied addresses are validated: a bad one disables the
/// clock for that vCPU with a logged reason. Thread-safe.
/// </summary>
public sealed class KvmClock : ISnapshotable
{
    /// <summary>Legacy MSRs (KVM_FEATURE_CLOCKSOURCE); same structures.</summary>
    public const uint MsrWallClock = 0x11;
    public const uint MsrSystemTime = 0x12;

    public const uint MsrWallClockNew = 0x4B56_4D00;
    public const uint MsrSystemTimeNew = 0x4B56_4D01;

    public const byte PvclockTscStableBit = 1 << 0;
    public const byte PvclockGuestStopped = 1 << 1;

    /// <summary>sizeof(struct pvclock_vcpu_time_info).</summary>
    public const int TimeInfoSize = 32;

    /// <summary>sizeof(struct pvclock_wall_clock).</summary>
    public const int WallClockSize = 12;

    private const ulong SystemTimeEnable = 1;
    private const ulong PageSize = 0x1000;
    private const string LogSource = "kvmclock";

    private readonly object _lock = new();
    private readonly GuestMemory _memory;
    private readonly PlatformTimeBase _time;
    private readonly PlatformLog _log;
    private readonly ulong[] _systemTimeMsr;
    private readonly bool[] _systemTimeActive;
    private ulong _wallClockMsr;

    public KvmClock(GuestMemory memory, PlatformTimeBase time, int vcpuCount, PlatformLog? log = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        _memory = memory;
        _time = time;
        _log = log ?? PlatformLog.Null;
        _systemTimeMsr = new ulong[vcpuCount];
        _systemTimeActive = new bool[vcpuCount];
        GetTimeScale(PlatformTimeBase.NanosecondsPerSecond, (ulong)time.TscFrequencyHz, out sbyte shift, out uint multiplier);
        TscShift = shift;
        TscToSystemMultiplier = multiplier;
    }

    /// <summary>tsc_to_system_mul for the advertised TSC frequency.</summary>
    public uint TscToSystemMultiplier { get; }

    /// <summary>tsc_shift for the advertised TSC frequency.</summary>
    public sbyte TscShift { get; }

    public static bool HandlesMsr(uint msr) =>
        msr is MsrWallClock or MsrSystemTime or MsrWallClockNew or MsrSystemTimeNew;

    /// <summary>Whether <paramref name="vcpu"/> has a valid, enabled time structure.</summary>
    public bool IsEnabled(int vcpu)
    {
        lock (_lock)
        {
            return (uint)vcpu < (uint)_systemTimeActive.Length && _systemTimeActive[vcpu];
        }
    }

    /// <summary>RDMSR: the last value written (as KVM returns it). False means #GP.</summary>
    public bool ReadMsr(int vcpu, uint msr, out ulong value)
    {
        value = 0;
        if ((uint)vcpu >= (uint)_systemTimeMsr.Length || !HandlesMsr(msr))
        {
            return false;
        }

        lock (_lock)
        {
            value = msr is MsrWallClock or MsrWallClockNew ? _wallClockMsr : _systemTimeMsr[vcpu];
        }

        return true;
    }

    /// <summary>WRMSR. False means #GP (not a kvmclock MSR); bad addresses are logged and ignored, never a fault.</summary>
    public bool WriteMsr(int vcpu, uint msr, ulong value)
    {
        if ((uint)vcpu >= (uint)_systemTimeMsr.Length || !HandlesMsr(msr))
        {
            return false;
        }

        lock (_lock)
        {
            if (msr is MsrWallClock or MsrWallClockNew)
            {
                _wallClockMsr = value;
                WriteWallClockLocked(value);
            }
            else
            {
                _systemTimeMsr[vcpu] = value;
                _systemTimeActive[vcpu] = false;
                if ((value & SystemTimeEnable) != 0)
                {
                    _systemTimeActive[vcpu] = PublishLocked(vcpu, guestStopped: false);
                }
            }
        }

        return true;
    }

    /// <summary>
    /// Tells every vCPU's guest that it was stopped (PVCLOCK_GUEST_STOPPED), after the machine was
    /// paused, so its soft-lockup watchdog does not fire. Time itself stood still with the time base.
    /// </summary>
    public void NotifyGuestStopped()
    {
        lock (_lock)
        {
            for (int vcpu = 0; vcpu < _systemTimeActive.Length; vcpu++)
            {
                if (_systemTimeActive[vcpu])
                {
                    _systemTimeActive[vcpu] = PublishLocked(vcpu, guestStopped: true);
                }
            }
        }
    }

    /// <summary>
    /// KVM's kvm_get_time_scale: the (shift, mul) with which scaled = ((base &lt;&lt; shift) * mul) &gt;&gt; 32
    /// converts <paramref name="baseHz"/> ticks to <paramref name="scaledHz"/> ticks.
    /// </summary>
    public static void GetTimeScale(ulong scaledHz, ulong baseHz, out sbyte shift, out uint multiplier)
    {
        ulong scaled64 = scaledHz;
        ulong tps64 = baseHz;
        int s = 0;
        while (tps64 > scaled64 * 2 || (tps64 & 0xFFFF_FFFF_0000_0000UL) != 0)
        {
            tps64 >>= 1;
            s--;
        }

        uint tps32 = (uint)tps64;
        while (tps32 <= scaled64 || (scaled64 & 0xFFFF_FFFF_0000_0000UL) != 0)
        {
            if ((scaled64 & 0xFFFF_FFFF_0000_0000UL) != 0 || (tps32 & 0x8000_0000) != 0)
            {
                scaled64 >>= 1;
            }
            else
            {
                tps32 <<= 1;
            }

            s++;
        }

        shift = (sbyte)s;
        multiplier = (uint)((scaled64 << 32) / tps32);
    }

    /// <summary>Linux's pvclock_scale_delta: TSC ticks to nanoseconds with a published (mul, shift).</summary>
    public static ulong ScaleDelta(ulong delta, uint multiplier, sbyte shift)
    {
        delta = shift < 0 ? delta >> -shift : delta << shift;
        return (ulong)(((UInt128)delta * multiplier) >> 32);
    }

    private void WriteWallClockLocked(ulong address)
    {
        if (!_memory.TryGetSpan(address, WallClockSize, out Span<byte> span))
        {
            _log.Warn(LogSource, $"wall clock at 0x{address:x} is not in guest RAM; ignored");
            return;
        }

        // pvclock_wall_clock { u32 version; u32 sec; u32 nsec; }: when kvmclock read zero, in Unix time.
        ref uint version = ref MemoryMarshal.AsRef<uint>(span);
        uint next = Volatile.Read(ref version);
        if ((next & 1) != 0)
        {
            // Junk from before the first write: start from an even value.
            next++;
        }

        next++;
        Volatile.Write(ref version, next);

        long bootNs = (_time.WallClockAtZero.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)(bootNs / PlatformTimeBase.NanosecondsPerSecond));
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)(bootNs % PlatformTimeBase.NanosecondsPerSecond));
        Volatile.Write(ref version, next + 1);
        _memory.NotifyExternalWrite(address, WallClockSize); // the dirty log (migration) and the write tracker
    }

    /// <summary>Writes vCPU <paramref name="vcpu"/>'s pvclock_vcpu_time_info with the odd/even version protocol; false if its address is bad.</summary>
    private bool PublishLocked(int vcpu, bool guestStopped)
    {
        ulong address = _systemTimeMsr[vcpu] & ~SystemTimeEnable;
        if ((address & (PageSize - 1)) + TimeInfoSize > PageSize)
        {
            _log.Warn(LogSource, $"cpu {vcpu}: time info at 0x{address:x} crosses a page; kvmclock disabled");
            return false;
        }

        if (!_memory.TryGetSpan(address, TimeInfoSize, out Span<byte> span))
        {
            _log.Warn(LogSource, $"cpu {vcpu}: time info at 0x{address:x} is not in guest RAM; kvmclock disabled");
            return false;
        }

        ref uint version = ref MemoryMarshal.AsRef<uint>(span);
        uint odd = (Volatile.Read(ref version) + 1) | 1;
        Volatile.Write(ref version, odd);

        // One sample of the clock gives both: the TSC is derived from the nanosecond clock.
        long ns = _time.NowNanoseconds;
        ulong tsc = _time.NanosecondsToTsc(ns);
        byte flags = (byte)(PvclockTscStableBit | (guestStopped ? PvclockGuestStopped : 0));

        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], tsc);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], (ulong)ns);
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], TscToSystemMultiplier);
        span[28] = (byte)TscShift;
        span[29] = flags;
        span[30] = 0;
        span[31] = 0;
        Volatile.Write(ref version, odd + 1);
        _memory.NotifyExternalWrite(address, TimeInfoSize);
        return true;
    }

    public string SnapshotTag => "kvmclock";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            w.Write(_systemTimeMsr);
            w.Write(_systemTimeActive.Length);
            foreach (bool active in _systemTimeActive)
            {
                w.Write(active);
            }

            w.Write(_wallClockMsr);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            r.ReadUInt64Array(_systemTimeMsr.Length).CopyTo(_systemTimeMsr, 0);
            if (r.ReadInt32() != _systemTimeActive.Length)
            {
                throw r.Invalid("kvmclock saved for another number of vCPUs");
            }

            for (int i = 0; i < _systemTimeActive.Length; i++)
            {
                _systemTimeActive[i] = r.ReadBoolean();
            }

            _wallClockMsr = r.ReadUInt64();
        }
    }
}
