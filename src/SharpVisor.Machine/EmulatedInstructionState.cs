namespace SharpVisor.Machine;

/// <summary>
/// The vCPU state an <see cref="IInstructionEmulator"/> reads and writes: the registers, XCR0 and
/// the SSE registers (XMM0–15, MXCSR). The x87 stack and the upper halves of AVX registers are not
/// carried, so an instruction that uses them must not be handed over.
/// </summary>
public sealed class EmulatedInstructionState
{
    public const int XmmBytes = 16 * 16;

    public EmulatedInstructionState(VcpuState registers)
    {
        ArgumentNullException.ThrowIfNull(registers);
        Registers = registers;
    }

    public VcpuState Registers { get; }

    /// <summary>The XSAVE feature mask (x87 only, 1, after reset).</summary>
    public ulong Xcr0 { get; set; } = 1;

    /// <summary>XMM0–XMM15, 16 bytes each, little-endian.</summary>
    public byte[] Xmm { get; } = new byte[XmmBytes];

    public uint Mxcsr { get; set; } = 0x1F80;
}
