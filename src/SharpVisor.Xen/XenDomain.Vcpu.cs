namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int VcpuOpInitialise = 0;
    private const int VcpuOpUp = 1;
    private const int VcpuOpDown = 2;
    private const int VcpuOpIsUp = 3;
    private const int VcpuOpRegisterRunstate = 5;
    private const int VcpuOpSetPeriodicTimer = 6;
    private const int VcpuOpStopPeriodicTimer = 7;
    private const int VcpuOpSetSingleshotTimer = 8;
    private const int VcpuOpStopSingleshotTimer = 9;
    private const int VcpuOpRegisterVcpuInfo = 10;

    private const uint SingleshotFuture = 1;

    /// <summary>Xen's floor for periodic timers: 1 ms.</summary>
    private const ulong MinimumPeriodNs = 1_000_000;

    private const int RunstateSize = 48;

    private long VcpuOp(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        uint vcpuId = (uint)frame.Argument(1);
        ulong arg = frame.Argument(2);
        CheckVcpu(vcpuId);
        XenVcpu vcpu = _vcpus[vcpuId];
        switch (command)
        {
            case VcpuOpIsUp:
                return vcpu.Up ? 1 : 0;

            case VcpuOpInitialise when _pvCpu is not null:
                return PvInitialiseVcpu(frame, vcpu, arg);

            case VcpuOpUp when _pvCpu is not null:
                return PvVcpuUp(vcpu);

            case VcpuOpDown when _pvCpu is not null:
                return PvVcpuDown(vcpu);

            case VcpuOpInitialise:
            case VcpuOpUp:
            case VcpuOpDown:
                // HVM and PVH vCPUs start through the local APIC (INIT/SIPI); there is no PV context to load.
                return Unknown(frame, "vcpu_op command", command);

            case VcpuOpRegisterVcpuInfo:
            {
                // struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset; uint32_t rsvd; }
                ulong gfn = frame.Read<ulong>(arg);
                uint offset = frame.Read<uint>(arg + 8);
                if (offset > 4096 - SharedInfoLayout.VcpuInfoSize || (offset & 7) != 0)
                {
                    throw new XenException(XenErrno.EINVAL, $"vcpu_info offset {offset} is not an aligned place in the page");
                }

                ulong address = frame.RamFrame(gfn) + offset;
                RegisterVcpuInfo(vcpu, address);
                return 0;
            }

            case VcpuOpRegisterRunstate:
                vcpu.RunstateAddress = frame.Read<ulong>(arg);
                WriteRunstate(frame, vcpu);
                return 0;

            case VcpuOpSetSingleshotTimer:
            {
                RequireCurrent(frame, vcpuId);
                ulong timeout = frame.Read<ulong>(arg);
                uint flags = frame.Read<uint>(arg + 8);
                if ((flags & SingleshotFuture) != 0 && timeout < SystemTimeNow())
                {
                    return -XenErrno.ETIME;
                }

                SetSingleShot(vcpu, timeout);
                return 0;
            }

            case VcpuOpStopSingleshotTimer:
                RequireCurrent(frame, vcpuId);
                SetSingleShot(vcpu, 0);
                return 0;

            case VcpuOpSetPeriodicTimer:
            {
                ulong period = frame.Read<ulong>(arg);
                if (period < MinimumPeriodNs)
                {
                    throw new XenException(XenErrno.EINVAL, $"period {period} ns is below 1 ms");
                }

                lock (vcpu)
                {
                    vcpu.PeriodNs = period;
                    vcpu.PeriodicNext = SystemTimeNow() + period;
                    ArmTimer(vcpu);
                }

                return 0;
            }

            case VcpuOpStopPeriodicTimer:
                lock (vcpu)
                {
                    vcpu.PeriodNs = 0;
                    ArmTimer(vcpu);
                }

                return 0;

            default:
                return Unknown(frame, "vcpu_op command", command);
        }
    }

    /// <summary>set_timer_op: the calling vCPU's single-shot timer at an absolute system time (0 stops it).</summary>
    private long SetTimerOp(HypercallFrame frame)
    {
        SetSingleShot(_vcpus[frame.VcpuId], frame.Argument(0));
        return 0;
    }

    private static void RequireCurrent(HypercallFrame frame, uint vcpuId)
    {
        if (vcpuId != frame.VcpuId)
        {
            throw new XenException(XenErrno.EINVAL, $"vCPU {frame.VcpuId} cannot set vCPU {vcpuId}'s timer");
        }
    }

    /// <summary>
    /// Moves the vCPU's vcpu_info: as Xen does, the new copy starts with everything marked pending
    /// (a spurious upcall the guest copes with), so no event is lost in the move.
    /// </summary>
    /// <summary>
    /// VCPUOP_register_vcpu_info as Xen's map_vcpu_info: the new place takes the current vcpu_info
    /// (so the event mask a PV kernel holds stays set across the move), or zeroes with events
    /// masked when the vCPU had none; every selector is then marked pending so no event is lost.
    /// </summary>
    private void RegisterVcpuInfo(XenVcpu vcpu, ulong address)
    {
        lock (_lock)
        {
            ulong current = VcpuInfoAddress(vcpu);
            if (current == 0)
            {
                Memory.Fill(address, SharedInfoLayout.VcpuInfoSize, 0);
                Memory.Write(address + SharedInfoLayout.UpcallMask, (byte)1);
            }
            else if (current != address)
            {
                byte[] info = new byte[SharedInfoLayout.VcpuInfoSize];
                Memory.Read(current, info);
                Memory.Write(address, info);
            }

            vcpu.VcpuInfoAddress = address;
            Word(address + SharedInfoLayout.PendingSelector) = ulong.MaxValue;
        }

        WriteTimeInfo(vcpu);
        AssistVcpuInfo(vcpu, address);
        MarkUpcallPending(vcpu, address);
    }

    /// <summary>The domain's system time: nanoseconds of the guest's TSC, the same clock pvclock gives it.</summary>
    public ulong SystemTimeNow() => PvClock.Apply(Host.ReadTsc(), _scale.Multiplier, _scale.Shift);

    /// <summary>vcpu_time_info: a stable TSC scaled from TSC 0, so one write stays valid.</summary>
    private void WriteTimeInfo(XenVcpu vcpu)
    {
        ulong info = VcpuInfoAddress(vcpu);
        if (info == 0 || _host is null)
        {
            return;
        }

        ulong time = info + SharedInfoLayout.Time;
        Span<byte> t = Memory.GetSpan(time, 32);
        uint version = BitConverter.ToUInt32(t) | 1;
        BitConverter.TryWriteBytes(t, version);   // odd: an update is in progress
        Interlocked.MemoryBarrier();
        BitConverter.TryWriteBytes(t[8..], 0UL);                   // tsc_timestamp
        BitConverter.TryWriteBytes(t[16..], 0UL);                  // system_time
        BitConverter.TryWriteBytes(t[24..], _scale.Multiplier);    // tsc_to_system_mul
        t[28] = (byte)_scale.Shift;
        t[29] = PvClock.TscStableBit;
        Interlocked.MemoryBarrier();
        BitConverter.TryWriteBytes(t, version + 1);
    }

    /// <summary>The wall clock at system time 0 (wc_sec, wc_nsec, wc_sec_hi), under an even/odd version.</summary>
    private void WriteWallClock(ulong shared)
    {
        DateTimeOffset start = _options.WallClockAtStart ?? DateTimeOffset.UtcNow.AddTicks(-(long)(SystemTimeNow() / 100));
        long nanoseconds = (start - DateTimeOffset.UnixEpoch).Ticks * 100;
        ulong seconds = (ulong)(nanoseconds / 1_000_000_000);
        Span<byte> wc = Memory.GetSpan(shared + SharedInfoLayout.WcVersion, 16);
        uint version = BitConverter.ToUInt32(wc) | 1;
        BitConverter.TryWriteBytes(wc, version);
        Interlocked.MemoryBarrier();
        BitConverter.TryWriteBytes(wc[4..], (uint)seconds);
        BitConverter.TryWriteBytes(wc[8..], (uint)(nanoseconds % 1_000_000_000));
        BitConverter.TryWriteBytes(wc[12..], (uint)(seconds >> 32));
        Interlocked.MemoryBarrier();
        BitConverter.TryWriteBytes(wc, version + 1);
    }

    /// <summary>vcpu_runstate_info: always running (state 0) since system time 0 — no steal time to report.</summary>
    private void WriteRunstate(HypercallFrame frame, XenVcpu vcpu)
    {
        if (vcpu.RunstateAddress == 0)
        {
            return;
        }

        var runstate = new byte[RunstateSize];
        ulong now = SystemTimeNow();
        BitConverter.TryWriteBytes(runstate.AsSpan(8), now);
        BitConverter.TryWriteBytes(runstate.AsSpan(16), now);
        frame.WriteBytes(vcpu.RunstateAddress, runstate);
    }

    private void SetSingleShot(XenVcpu vcpu, ulong deadline)
    {
        lock (vcpu)
        {
            vcpu.SingleShotDeadline = deadline;
            ArmTimer(vcpu);
        }
    }

    /// <summary>Arms the host timer for the earlier of the vCPU's single-shot and periodic deadlines.</summary>
    private void ArmTimer(XenVcpu vcpu)
    {
        ulong next = vcpu.SingleShotDeadline;
        if (vcpu.PeriodNs != 0 && (next == 0 || vcpu.PeriodicNext < next))
        {
            next = vcpu.PeriodicNext;
        }

        if (next == 0)
        {
            vcpu.Timer.Change(Timeout.Infinite, Timeout.Infinite);
            return;
        }

        ulong now = SystemTimeNow();
        long delayMs = next <= now ? 0 : (long)Math.Min((next - now + 999_999) / 1_000_000, int.MaxValue - 1);
        vcpu.Timer.Change(delayMs, Timeout.Infinite);
    }

    /// <summary>A host timer fired: VIRQ_TIMER for every deadline that passed, then re-arm.</summary>
    private void OnTimer(object? state)
    {
        var vcpu = (XenVcpu)state!;
        if (_host is null || Volatile.Read(ref _disposed))
        {
            return;
        }

        bool fire = false;
        lock (vcpu)
        {
            ulong now = SystemTimeNow();
            if (vcpu.SingleShotDeadline != 0 && vcpu.SingleShotDeadline <= now)
            {
                vcpu.SingleShotDeadline = 0;
                fire = true;
            }

            if (vcpu.PeriodNs != 0 && vcpu.PeriodicNext <= now)
            {
                vcpu.PeriodicNext = now + vcpu.PeriodNs;
                fire = true;
            }

            ArmTimer(vcpu);
        }

        if (fire)
        {
            Counters.Increment("timer-virqs");
            RaiseVirq(vcpu.Id, VirqTimer);
        }
    }
}
