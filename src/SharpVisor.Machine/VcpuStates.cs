namespace SharpVisor.Machine;

/// <summary>Architectural entry states the VMM and the accelerators put a vCPU in besides a kernel's boot state.</summary>
public static class VcpuStates
{
    /// <summary>The INIT state's CS:IP: F000:FFF0 (the reset vector); an AP waits there for a SIPI.</summary>
    public const ushort InitSegment = 0xF000;
    public const ushort InitOffset = 0xFFF0;

    /// <summary>
    /// Real mode at <paramref name="segment"/>:<paramref name="offset"/> with every data segment
    /// equal to CS, as firmware jumps to an S3 waking vector: paging and long mode off, IF = 0,
    /// the IVT at 0. Starts from <paramref name="current"/> to keep what the accelerator owns
    /// (APIC base, x87/SSE state).
    /// </summary>
    public static VcpuState RealMode(VcpuState current, ushort segment, ushort offset)
    {
        ArgumentNullException.ThrowIfNull(current);
        SegmentRegister data = new() { Selector = segment, Base = (ulong)segment << 4, Limit = 0xFFFF, Type = 0x3, CodeOrData = true, Present = true };
        current.Cs = data with { Type = 0xB };
        current.Ds = current.Es = current.Fs = current.Gs = current.Ss = data;
        current.Rip = offset;
        current.Rsp = 0;
        current.Rflags = 0x2;
        current.Cr0 = VcpuState.Cr0ExtensionType;
        current.Cr2 = current.Cr3 = current.Cr4 = 0;
        current.Efer = 0;
        current.Gdt = new DescriptorTable(0, 0xFFFF);
        current.Idt = new DescriptorTable(0, 0x3FF);
        current.Ldt = new SegmentRegister { Type = 0x2, Limit = 0xFFFF, Present = true };
        current.Tr = new SegmentRegister { Type = 0xB, Limit = 0xFFFF, Present = true };
        return current;
    }
}
