namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>How a case ended on one side, in the native harness's terms.</summary>
internal enum DiffOutcome
{
    Completed = 0,
    Fault = 1,
    Timeout = 2,
}

/// <summary>The state after a case: registers, flags, FXSAVE image, data window, and the fault if any.</summary>
internal sealed class DiffResult
{
    public DiffOutcome Outcome { get; set; }

    /// <summary>Exception vector (the kernel's trap number natively).</summary>
    public ulong Vector { get; set; }

    public ulong ErrorCode { get; set; }

    /// <summary>Faulting address, meaningful for #PF.</summary>
    public ulong Cr2 { get; set; }

    public int Signal { get; set; }

    public ulong[] Gpr { get; } = new ulong[16];

    public ulong Rip { get; set; }

    public ulong Rflags { get; set; }

    public byte[] Fx { get; set; } = new byte[512];

    public byte[] Data { get; set; } = [];

    public string Describe()
    {
        string outcome = Outcome switch
        {
            DiffOutcome.Completed => "completed",
            DiffOutcome.Timeout => "timeout",
            _ => $"fault vector {Vector} error 0x{ErrorCode:x}" + (Vector == 14 ? $" cr2 0x{Cr2:x}" : "") + $" rip 0x{Rip:x}",
        };
        return outcome;
    }
}
