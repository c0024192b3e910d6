using SharpVisor.Machine;

namespace SharpVisor.Boot;

/// <summary>The architectural entry states the loaders hand to vCPU 0.</summary>
public static class BootCpuState
{
    /// <summary>
    /// Linux's 64-bit boot protocol: long mode with the identity page tables, CS = __BOOT_CS,
    /// DS/ES/SS (and FS/GS) = __BOOT_DS, interrupts off, RSI = boot_params.
    /// </summary>
    public static VcpuState LongMode(ulong entry, ulong bootParams)
    {
        VcpuState state = Flat(BootGdt.Code64Descriptor);
        state.Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType | VcpuState.Cr0Paging;
        state.Cr3 = BootLayout.Pml4Address;
        state.Cr4 = VcpuState.Cr4Pae;
        state.Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive;
        state.Rip = entry;
        state.Rsi = bootParams;
        return state;
    }

    /// <summary>
    /// Multiboot's machine state: 32-bit protected mode, paging off, flat CS/DS/ES/FS/GS/SS,
    /// EAX = 0x2BADB002, EBX = multiboot_info, IF = 0. The spec leaves ESP undefined; it points at
    /// the boot stack anyway so a kernel that pushes before loading its own stack does no harm.
    /// </summary>
    public static VcpuState ProtectedMode(ulong entry, uint eax, uint ebx) =>
        ProtectedMode(entry, eax, ebx, MultibootPlacement.Fixed);

    /// <summary>The same, with the GDT, TSS and stack where <paramref name="placement"/> put them.</summary>
    public static VcpuState ProtectedMode(ulong entry, uint eax, uint ebx, MultibootPlacement placement)
    {
        VcpuState state = Flat(BootGdt.Code32Descriptor);
        state.Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType;
        state.Rip = entry;
        state.Rax = eax;
        state.Rbx = ebx;
        state.Rsp = placement.StackTop;
        state.Gdt = new DescriptorTable(placement.GdtAddress, BootLayout.GdtSize - 1);
        state.Tr = BootGdt.ToSegment(BootGdt.TssSelector, BootGdt.TssDescriptorAt(placement.TssAddress));
        return state;
    }

    private static VcpuState Flat(ulong codeDescriptor)
    {
        SegmentRegister data = BootGdt.ToSegment(BootGdt.DataSelector, BootGdt.DataDescriptor);
        return new VcpuState
        {
            Rflags = 0x2, // reserved bit 1 only: IF = 0
            Rsp = BootLayout.BootStackTop,
            Cs = BootGdt.ToSegment(BootGdt.CodeSelector, codeDescriptor),
            Ds = data,
            Es = data,
            Fs = data,
            Gs = data,
            Ss = data,
            Tr = BootGdt.ToSegment(BootGdt.TssSelector, BootGdt.TssDescriptor),

            // No LDT: selector 0, marked unusable (VM entry accepts that for LDTR).
            Ldt = new SegmentRegister { Type = 0x2, Limit = 0xFFFF, Unusable = true },
            Gdt = new DescriptorTable(BootLayout.GdtAddress, BootLayout.GdtSize - 1),

            // An empty IDT: a fault before the kernel installs its own escalates to a triple fault
            // (a clean shutdown exit) instead of vectoring through the real-mode IVT at 0.
            Idt = new DescriptorTable(0, 0),
        };
    }
}
