namespace SharpVisor.Emulator.Mmu;

/// <summary>A #PF the CPU must raise: the error code to push and the linear address for CR2.</summary>
public readonly record struct PageFault(PageFaultErrorCode ErrorCode, ulong Address)
{
    public override string ToString() => $"#PF(0x{(uint)ErrorCode:x}) at 0x{Address:x}";
}
