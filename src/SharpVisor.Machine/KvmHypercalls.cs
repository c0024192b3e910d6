namespace SharpVisor.Machine;

/// <summary>
/// KVM's hypercall ABI (Documentation/virt/kvm/x86/hypercalls.rst), as KVM answers it: the number
/// in RAX, arguments in RBX, RCX, RDX, RSI, the result in RAX; only CPL 0 may call (else
/// -KVM_EPERM); outside 64-bit mode every value is 32 bits. Answered: KVM_HC_VAPIC_POLL_IRQ,
/// KVM_HC_KICK_CPU, KVM_HC_SEND_IPI, KVM_HC_SCHED_YIELD; KVM_HC_CLOCK_PAIRING is
/// -KVM_EOPNOTSUPP (no host clock to pair with); anything else -KVM_ENOSYS. Like KVM without
/// KVM_CAP_ENFORCE_PV_FEATURE_CPUID, the calls are answered whether or not CPUID advertises them.
/// </summary>
public sealed class KvmHypercalls : IHypercallHandler
{
    public const ulong VapicPollIrq = 1;
    public const ulong KickCpu = 5;
    public const ulong ClockPairing = 9;
    public const ulong SendIpi = 10;
    public const ulong SchedYield = 11;

    /// <summary>KVM's error numbers are returned negated in RAX.</summary>
    public const long ErrorNoSys = 1000;
    public const long ErrorPermission = 1;
    public const long ErrorInvalid = 22;
    public const long ErrorNotSupported = 95;

    // ICR bits KVM_HC_SEND_IPI refuses: logical destination mode and any destination shorthand.
    private const ulong IcrLogicalDestination = 1UL << 11;
    private const ulong IcrShorthandMask = 3UL << 18;

    private readonly IKvmParavirtTarget _target;

    public KvmHypercalls(IKvmParavirtTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _target = target;
    }

    public bool Handle(int vcpuId, ref HypercallRegisters registers)
    {
        bool wide = registers.LongMode;
        ulong mask = wide ? ulong.MaxValue : uint.MaxValue;
        ulong number = registers.Rax & mask;
        ulong a0 = registers.Rbx & mask;
        ulong a1 = registers.Rcx & mask;
        ulong a2 = registers.Rdx & mask;
        ulong a3 = registers.Rsi & mask;
        long result = registers.Cpl != 0 ? -ErrorPermission : number switch
        {
            VapicPollIrq => 0,
            KickCpu => Kick((uint)a1),
            ClockPairing => -ErrorNotSupported,
            SendIpi => SendIpis(a0, a1, a2, a3, wide),
            SchedYield => Yield((uint)a0),
            _ => -ErrorNoSys,
        };
        registers.Rax = (ulong)result & mask;
        return true;
    }

    private long Kick(uint apicId)
    {
        _target.KickCpu(apicId);
        _target.YieldTo(apicId);
        return 0;
    }

    private long Yield(uint apicId)
    {
        _target.YieldTo(apicId);
        return 0;
    }

    /// <summary>Bit i of the low bitmap is APIC id min + i, of the high one min + cluster + i; returns how many were sent.</summary>
    private long SendIpis(ulong low, ulong high, ulong min, ulong icr, bool wide)
    {
        if ((icr & (IcrLogicalDestination | IcrShorthandMask)) != 0)
        {
            return -ErrorInvalid;
        }

        int cluster = wide ? 64 : 32;
        long count = 0;
        count += SendCluster(low, min, cluster, icr);
        count += SendCluster(high, min + (ulong)cluster, cluster, icr);
        return count;
    }

    private long SendCluster(ulong bitmap, ulong first, int cluster, ulong icr)
    {
        long count = 0;
        for (int bit = 0; bit < cluster && bitmap != 0; bit++, bitmap >>= 1)
        {
            ulong apicId = first + (ulong)bit;
            if ((bitmap & 1) != 0 && apicId <= uint.MaxValue && _target.SendIpi((uint)apicId, icr))
            {
                count++;
            }
        }

        return count;
    }
}
