namespace SharpVisor.Machine;

/// <summary>
/// The vCPU's state a hypercall ABI reads and writes: the general registers the KVM and Xen
/// ABIs use for the call number, arguments and result, and the mode they depend on.
/// </summary>
public struct HypercallRegisters
{
    public ulong Rax;
    public ulong Rbx;
    public ulong Rcx;
    public ulong Rdx;
    public ulong Rsi;
    public ulong Rdi;
    public ulong R8;
    public ulong R9;
    public ulong R10;

    /// <summary>The privilege level the call was made at (KVM refuses calls from CPL 1-3).</summary>
    public int Cpl;

    /// <summary>True in 64-bit mode; otherwise the ABIs use the low 32 bits of each register.</summary>
    public bool LongMode;
}
