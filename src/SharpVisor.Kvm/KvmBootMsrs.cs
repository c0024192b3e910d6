using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm;

/// <summary>
/// MSR values every vCPU starts with, as Firecracker and kvmtool set them: the syscall/sysenter
/// MSRs cleared (the guest kernel programs them), the TSC at 0, fast strings enabled in
/// IA32_MISC_ENABLE (Linux expects BIOS to have done it), MTRRs enabled with write-back as the
/// default type (no BIOS will program them), and the PAT at its power-on value.
/// </summary>
public static class KvmBootMsrs
{
    public const uint Ia32Tsc = 0x10;
    public const uint Ia32SysenterCs = 0x174;
    public const uint Ia32SysenterEsp = 0x175;
    public const uint Ia32SysenterEip = 0x176;
    public const uint Ia32MiscEnable = 0x1A0;
    public const uint Ia32Pat = 0x277;
    public const uint MtrrDefType = 0x2FF;
    public const uint Star = 0xC000_0081;
    public const uint Lstar = 0xC000_0082;
    public const uint Cstar = 0xC000_0083;
    public const uint SyscallMask = 0xC000_0084;
    public const uint KernelGsBase = 0xC000_0102;

    public const ulong MiscEnableFastStrings = 1UL << 0;
    public const ulong MtrrEnable = 1UL << 11;
    public const ulong MemoryTypeWriteBack = 6;
    public const ulong PatPowerOnDefault = 0x0007_0406_0007_0406;

    public static IReadOnlyList<KvmMsrEntry> Entries { get; } =
    [
        new() { Index = Ia32SysenterCs, Data = 0 },
        new() { Index = Ia32SysenterEsp, Data = 0 },
        new() { Index = Ia32SysenterEip, Data = 0 },
        new() { Index = Star, Data = 0 },
        new() { Index = Cstar, Data = 0 },
        new() { Index = KernelGsBase, Data = 0 },
        new() { Index = SyscallMask, Data = 0 },
        new() { Index = Lstar, Data = 0 },
        new() { Index = Ia32Tsc, Data = 0 },
        new() { Index = Ia32MiscEnable, Data = MiscEnableFastStrings },
        new() { Index = MtrrDefType, Data = MtrrEnable | MemoryTypeWriteBack },
        new() { Index = Ia32Pat, Data = PatPowerOnDefault },
    ];
}
