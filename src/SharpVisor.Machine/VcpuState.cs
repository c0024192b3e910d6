namespace SharpVisor.Machine;

/// <summary>
/// The architectural state boot code sets and crash reports print: general registers,
/// segments, descriptor tables and control registers. Accelerator-neutral.
/// </summary>
public sealed class VcpuState
{
    public const ulong Cr0ProtectionEnable = 1UL << 0;
    public const ulong Cr0MonitorCoprocessor = 1UL << 1;
    public const ulong Cr0ExtensionType = 1UL << 4;
    public const ulong Cr0NumericError = 1UL << 5;
    public const ulong Cr0WriteProtect = 1UL << 16;
    public const ulong Cr0Paging = 1UL << 31;
    public const ulong Cr4Pae = 1UL << 5;
    public const ulong Cr4Pge = 1UL << 7;
    public const ulong Cr4OsFxsr = 1UL << 9;
    public const ulong Cr4OsXmmExcpt = 1UL << 10;
    public const ulong EferSyscall = 1UL << 0;
    public const ulong EferLongModeEnable = 1UL << 8;
    public const ulong EferLongModeActive = 1UL << 10;
    public const ulong EferNoExecute = 1UL << 11;

    public ulong Rax, Rbx, Rcx, Rdx, Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11, R12, R13, R14, R15;
    public ulong Rip;
    public ulong Rflags = 0x2;

    public SegmentRegister Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldt;
    public DescriptorTable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8, Efer;
    public ulong ApicBase = 0xFEE0_0900;

    public VcpuState Clone() => (VcpuState)MemberwiseClone();

    /// <summary>A register dump for crash reports, in the layout of Linux's oops.</summary>
    public string Format() =>
        $"RIP: {Cs.Selector:x4}:{Rip:x16} RFLAGS: {Rflags:x8}\n" +
        $"RAX: {Rax:x16} RBX: {Rbx:x16} RCX: {Rcx:x16}\n" +
        $"RDX: {Rdx:x16} RSI: {Rsi:x16} RDI: {Rdi:x16}\n" +
        $"RBP: {Rbp:x16} RSP: {Rsp:x16} R8:  {R8:x16}\n" +
        $"R9:  {R9:x16} R10: {R10:x16} R11: {R11:x16}\n" +
        $"R12: {R12:x16} R13: {R13:x16} R14: {R14:x16}\n" +
        $"R15: {R15:x16}\n" +
        $"CR0: {Cr0:x16} CR2: {Cr2:x16} CR3: {Cr3:x16} CR4: {Cr4:x16} EFER: {Efer:x}\n" +
        $"CS: {Cs.Selector:x4} base {Cs.Base:x} L={(Cs.Long ? 1 : 0)} D={(Cs.DefaultBig ? 1 : 0)}  SS: {Ss.Selector:x4}  DS: {Ds.Selector:x4}  " +
        $"GDT: {Gdt.Base:x}/{Gdt.Limit:x}  IDT: {Idt.Base:x}/{Idt.Limit:x}";
}
