namespace SharpVisor.Emulator;

/// <summary>
/// The CPU's interface to interrupt delivery and start-up, used by the software accelerator's
/// vCPU loop. INTERIM: the declarations are fixed here so the accelerator (branch softaccel) and
/// the system state (branch cpusys) can be built side by side; cpusys replaces the bodies.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>The platform around this CPU (MSRs beyond the core, TSC, CPUID adjustments, CR8).</summary>
    public ICpuPlatform? Platform { get; set; }

    /// <summary>
    /// System mode: exceptions go through the guest's IDT (IVT in real mode) instead of ending
    /// <see cref="Run"/>; a triple fault ends it with <see cref="CpuStopReason.TripleFault"/>.
    /// </summary>
    public bool DeliverExceptions { get; set; }

    /// <summary>True when an external interrupt may be delivered now: RFLAGS.IF=1, no STI/MOV SS shadow, not waiting for SIPI.</summary>
    public bool CanAcceptInterrupt => throw new NotImplementedException("interrupt delivery: branch cpusys");

    /// <summary>True after HLT until an interrupt, NMI, INIT or SIPI wakes the CPU.</summary>
    public bool IsHalted => throw new NotImplementedException("interrupt delivery: branch cpusys");

    /// <summary>True after INIT until a start-up IPI arrives.</summary>
    public bool IsWaitingForStartup => throw new NotImplementedException("interrupt delivery: branch cpusys");

    /// <summary>Delivers external interrupt <paramref name="vector"/> through the IDT now (call only when <see cref="CanAcceptInterrupt"/>); wakes from HLT.</summary>
    public void DeliverInterrupt(byte vector) => throw new NotImplementedException("interrupt delivery: branch cpusys");

    /// <summary>Delivers an NMI (vector 2) unless one is being handled; wakes from HLT.</summary>
    public void DeliverNmi() => throw new NotImplementedException("interrupt delivery: branch cpusys");

    /// <summary>INIT: the architectural INIT state, then wait for a start-up IPI.</summary>
    public void EnterInitState() => throw new NotImplementedException("interrupt delivery: branch cpusys");

    /// <summary>Start-up IPI: real mode at CS = vector &lt;&lt; 8, IP = 0, if waiting for one.</summary>
    public void DeliverStartup(byte vector) => throw new NotImplementedException("interrupt delivery: branch cpusys");
}
