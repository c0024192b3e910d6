namespace SharpVisor.Emulator;

/// <summary>Why <see cref="X86Cpu.Run"/> returned.</summary>
public enum CpuStopReason
{
    /// <summary>The instruction budget of the call ran out.</summary>
    InstructionLimit,

    /// <summary>RIP reached an address registered with <see cref="X86Cpu.AddBreakpoint"/>.</summary>
    Breakpoint,

    /// <summary>HLT executed; RIP points after it.</summary>
    Halted,

    /// <summary>An exception or software interrupt was raised (see <see cref="CpuRunResult.Exception"/>); RIP points at the faulting instruction (after it, for software interrupts).</summary>
    Exception,

    /// <summary><see cref="X86Cpu.RequestStop"/> was called.</summary>
    StopRequested,

    /// <summary>A fault while delivering a double fault: the processor shut down (system mode only; <see cref="CpuRunResult.Detail"/> says why).</summary>
    TripleFault,

    /// <summary>The CPU is in the wait-for-SIPI state after INIT.</summary>
    WaitingForStartup,

    /// <summary><see cref="X86Cpu.InterruptWindowRequested"/> is set and an external interrupt can be delivered now.</summary>
    InterruptWindow,
}
