using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// Privileged instructions a PV guest executes at CPL 3 (they #GP) and Xen emulates
/// (xen/arch/x86/pv/emul-priv-op.c), and the forced-emulation prefix (pv/emul-inv-op.c). Anything
/// else, and anything from guest user mode, goes back to the guest as the #GP it was.
/// </summary>
public sealed partial class PvCpu
{
    private const uint MsrEfer = 0xC000_0080;
    private const uint MsrFsBase = 0xC000_0100;
    private const uint MsrGsBase = 0xC000_0101;
    private const uint MsrShadowGsBase = 0xC000_0102;
    private const uint MsrPlatformId = 0x17;
    private const uint MsrFeatureControl = 0x3A;
    private const uint MsrUcodeRevision = 0x8B;
    private const uint MsrPlatformInfo = 0xCE;
    private const uint MsrMiscFeaturesEnables = 0x140;
    private const uint MsrMiscEnable = 0x1A0;
    private const uint MsrPat = 0x277;
    private const uint MsrPerfCapabilities = 0x345;
    private const uint MsrAmdHwcr = 0xC001_0015;
    private const uint MsrAmdDeCfg = 0xC001_1029;

    /// <summary>Xen's PAT (XEN_MSR_PAT): WB, WT, UC-, UC, WC, WP, UC, UC.</summary>
    private const ulong XenPat = 0x0000_0501_0007_0406;

    /// <summary>CR4 bits a PV guest reads as Xen runs them (PV_CR4_GUEST_VISIBLE_MASK, as set here): PAE, OSFXSR, OSXMMEXCPT.</summary>
    private const ulong Cr4GuestVisible = (1UL << 5) | (1UL << 9) | (1UL << 10);

    // CR4 bits a PV guest controls (PV_CR4_GUEST_MASK), each only when its CPUID feature is there.
    private const ulong Cr4Tsd = 1UL << 2;
    private const ulong Cr4De = 1UL << 3;
    private const ulong Cr4FsGsBase = 1UL << 16;
    private const ulong Cr4OsXsave = 1UL << 18;

    /// <summary>EFER as a 64-bit PV guest sees it: LME, LMA, NXE, SCE.</summary>
    private const ulong GuestEfer = (1UL << 8) | (1UL << 10) | (1UL << 11) | 1;

    /// <summary>CR0 as a PV guest reads it: PE, MP, ET, NE, WP, PG (TS its own).</summary>
    private const ulong GuestCr0 = 1UL | 2 | 0x10 | 0x20 | (1UL << 16) | (1UL << 31);

    /// <summary>ud2; .ascii "xen" — Xen's forced-emulation prefix, followed by the instruction (CPUID).</summary>
    private static ReadOnlySpan<byte> ForcedEmulationPrefix => [0x0F, 0x0B, (byte)'x', (byte)'e', (byte)'n'];

    // The CPUID features a PV guest does not get (Xen's PV policy keeps only the features marked
    // 'A' in public/arch-x86/cpufeatureset.h; 'S' and 'H' are for HVM guests). Without PSE, PGE and
    // 1 GiB pages Linux maps its memory with 4 KiB pages and no global bit, as Xen requires.
    // Leaf 1 EDX: VME, PSE, MTRR, PGE, PSE36, DS, TM1, PBE.
    private const uint HiddenLeaf1Edx = (1u << 1) | (1u << 3) | (1u << 12) | (1u << 13) | (1u << 17) | (1u << 21) | (1u << 29) | (1u << 31);

    // Leaf 1 ECX: DTES64, MONITOR, DS-CPL, VMX, SMX, EIST, TM2, xTPR, PDCM, PCID, DCA, x2APIC, TSC deadline.
    private const uint HiddenLeaf1Ecx = (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8)
        | (1u << 14) | (1u << 15) | (1u << 17) | (1u << 18) | (1u << 21) | (1u << 24);

    // Leaf 7 EBX: TSC_ADJUST, SGX, SMEP, INVPCID, PQM, MPX, PQE, SMAP; ECX: UMIP, PKU, OSPKE, CET shadow stacks.
    private const uint HiddenLeaf7Ebx = (1u << 1) | (1u << 2) | (1u << 7) | (1u << 10) | (1u << 12) | (1u << 14) | (1u << 15) | (1u << 20);
    private const uint HiddenLeaf7Ecx = (1u << 2) | (1u << 3) | (1u << 4) | (1u << 7);

    // Leaf 0x80000001 EDX: 1 GiB pages; ECX: SVM, ExtApicSpace, AltMovCr8, OSVW, IBS, SKINIT, WDT, LWP, NodeId, TopologyExtensions, MONITORX.
    private const uint HiddenExtendedEdx = 1u << 26;
    private const uint HiddenExtendedEcx = (1u << 2) | (1u << 3) | (1u << 4) | (1u << 9) | (1u << 10) | (1u << 12) | (1u << 13)
        | (1u << 15) | (1u << 19) | (1u << 22) | (1u << 29);

    private bool TryForcedEmulation(IParavirtualCpuContext cpu)
    {
        Span<byte> bytes = stackalloc byte[7];
        if (!cpu.TryReadVirtual(cpu.Rip, bytes) || !bytes[..5].SequenceEqual(ForcedEmulationPrefix) || bytes[5] != 0x0F || bytes[6] != 0xA2)
        {
            return false;
        }

        Cpuid(cpu);
        cpu.Rip += 7;
        _domain.Counters.Increment("pv-forced-cpuid");
        return true;
    }

    /// <summary>CPUID as Xen answers a PV guest: the processor's leaves with the PV policy's features only, and the hypervisor bit.</summary>
    private static void Cpuid(IParavirtualCpuContext cpu)
    {
        uint leaf = (uint)cpu.GetRegister(0);
        uint subleaf = (uint)cpu.GetRegister(1);
        CpuidResult r = cpu.Cpuid(leaf, subleaf);
        (uint eax, uint ebx, uint ecx, uint edx) = (r.Eax, r.Ebx, r.Ecx, r.Edx);
        switch (leaf)
        {
            case 1:
                ecx = (ecx & ~HiddenLeaf1Ecx) | (1u << 31);
                edx &= ~HiddenLeaf1Edx;
                break;
            case 7 when subleaf == 0:
                ebx &= ~HiddenLeaf7Ebx;
                ecx &= ~HiddenLeaf7Ecx;
                break;
            case 0xD when subleaf == 1:
                eax &= ~(1u << 3);                // XSAVES
                break;
            case 0x8000_0001:
                ecx &= ~HiddenExtendedEcx;
                edx &= ~HiddenExtendedEdx;
                break;
        }

        cpu.SetRegister(0, eax);
        cpu.SetRegister(3, ebx);
        cpu.SetRegister(1, ecx);
        cpu.SetRegister(2, edx);
    }

    /// <summary>Decodes the instruction at RIP and emulates it when Xen would for a PV guest kernel; false reflects the #GP.</summary>
    private bool TryEmulatePrivileged(IParavirtualCpuContext cpu, PvVcpuState vcpu)
    {
        Span<byte> code = stackalloc byte[15];
        int available = 15;
        while (available > 0 && !cpu.TryReadVirtual(cpu.Rip, code[..available]))
        {
            available--;                     // the instruction may end just before an unmapped page
        }

        code = code[..available];
        int i = 0;
        bool operand16 = false;
        int rex = 0;
        while (i < code.Length && code[i] is 0x66 or 0xF2 or 0xF3 or 0x2E or 0x3E or 0x26 or 0x36 or 0x64 or 0x65)
        {
            operand16 |= code[i] == 0x66;
            i++;
        }

        if (i < code.Length && (code[i] & 0xF0) == 0x40)
        {
            rex = code[i++];
        }

        if (i >= code.Length)
        {
            return false;
        }

        string? name = null;
        int length = 0;
        byte op = code[i];
        if (op == 0x0F && i + 1 < code.Length)
        {
            byte op2 = code[i + 1];
            length = i + 2;
            switch (op2)
            {
                case 0x30 when vcpu.KernelMode:
                    name = WriteMsr(cpu) ? "wrmsr" : null;
                    break;
                case 0x32 when vcpu.KernelMode:
                    name = ReadMsr(cpu) ? "rdmsr" : null;
                    break;
                case 0x06 when vcpu.KernelMode:
                    cpu.TaskSwitched = false;
                    name = "clts";
                    break;
                case 0x08 or 0x09 when vcpu.KernelMode:
                    name = "wbinvd";             // no cache-flush permission: Xen ignores it
                    break;
                case 0x20 when vcpu.KernelMode && i + 2 < code.Length && (code[i + 2] & 0xC0) == 0xC0:
                    name = ReadControlRegister(cpu, vcpu, (code[i + 2] >> 3) & 7, (code[i + 2] & 7) | ((rex & 1) << 3)) ? "mov-from-cr" : null;
                    length = i + 3;
                    break;
                case 0x22 when vcpu.KernelMode && i + 2 < code.Length && (code[i + 2] & 0xC0) == 0xC0:
                    name = WriteControlRegister(cpu, vcpu, ((code[i + 2] >> 3) & 7) | ((rex & 4) << 1), (code[i + 2] & 7) | ((rex & 1) << 3)) ? "mov-to-cr" : null;
                    length = i + 3;
                    break;
                case 0x01 when vcpu.KernelMode && i + 2 < code.Length && code[i + 2] == 0xF8:
                    (cpu.GsBase, cpu.KernelGsBase) = (cpu.KernelGsBase, cpu.GsBase);
                    name = "swapgs";
                    length = i + 3;
                    break;
            }
        }
        else
        {
            length = i + 1;
            bool ioAllowed = vcpu.Iopl >= (vcpu.KernelMode ? 1 : 3);
            switch (op)
            {
                case 0xE4 or 0xE5 or 0xEC or 0xED when ioAllowed:
                {
                    // A domU has no I/O ports: reads float high, as Xen's admin_io_okay refusal gives.
                    int size = op is 0xE4 or 0xEC ? 1 : operand16 ? 2 : 4;
                    ulong rax = cpu.GetRegister(0);
                    ulong mask = size == 4 ? 0xFFFF_FFFFUL : (1UL << (size * 8)) - 1;
                    cpu.SetRegister(0, size == 4 ? mask : (rax & ~mask) | mask);
                    length += op is 0xE4 or 0xE5 ? 1 : 0;
                    name = "in";
                    break;
                }

                case 0xE6 or 0xE7 or 0xEE or 0xEF when ioAllowed:
                    length += op is 0xE6 or 0xE7 ? 1 : 0;
                    name = "out";
                    break;
                case 0xFA or 0xFB when ioAllowed:
                {
                    ulong info = _domain.VcpuInfoOf(cpu.VcpuId);
                    if (info != 0)
                    {
                        Memory.Write(info + SharedInfoLayout.UpcallMask, (byte)(op == 0xFA ? 1 : 0));
                    }

                    name = op == 0xFA ? "cli" : "sti";
                    break;
                }

                case 0xF4 when vcpu.KernelMode:
                    cpu.Halt();
                    name = "hlt";
                    break;
            }
        }

        if (name is null || length > code.Length)
        {
            return false;
        }

        cpu.Rip += (ulong)length;
        _domain.Counters.Increment($"pv-emulated-{name}");
        return true;
    }

    private bool WriteMsr(IParavirtualCpuContext cpu)
    {
        uint index = (uint)cpu.GetRegister(1);
        ulong value = ((cpu.GetRegister(2) & 0xFFFF_FFFF) << 32) | (cpu.GetRegister(0) & 0xFFFF_FFFF);
        switch (index)
        {
            case MsrFsBase when IsCanonical(value):
                cpu.FsBase = value;
                return true;
            case MsrGsBase when IsCanonical(value):
                cpu.GsBase = value;
                return true;
            case MsrShadowGsBase when IsCanonical(value):
                cpu.KernelGsBase = value;
                return true;
            case MsrUcodeRevision when value == 0:                // Intel's "write 0, CPUID, read" revision probe
            case MsrEfer when value == GuestEfer:
            case MsrMiscEnable or MsrMiscFeaturesEnables or MsrPat:
                return true;                                      // Xen ignores these writes from a PV guest
            default:
                _domain.Counters.Increment($"pv-wrmsr-refused-{index:x}");
                _domain.TracePv($"wrmsr 0x{index:x} refused");
                return false;
        }
    }

    private bool ReadMsr(IParavirtualCpuContext cpu)
    {
        uint index = (uint)cpu.GetRegister(1);
        ulong? value = index switch
        {
            MsrFsBase => cpu.FsBase,
            MsrGsBase => cpu.GsBase,
            MsrShadowGsBase => cpu.KernelGsBase,
            MsrEfer => GuestEfer,
            MsrPlatformId or MsrUcodeRevision or MsrPlatformInfo or MsrMiscFeaturesEnables or MsrPerfCapabilities => 0,
            MsrFeatureControl => 1,                               // locked, VMX off (xen/arch/x86/msr.c)
            MsrMiscEnable => (1UL << 11) | (1UL << 12),           // BTS and PEBS unavailable, as Xen masks it
            MsrPat => XenPat,
            MsrAmdHwcr when IsAmd(cpu) => 0,
            MsrAmdDeCfg when IsAmd(cpu) => 1UL << 1,              // LFENCE serialising, as Xen reports
            _ => null,
        };
        if (value is not ulong v)
        {
            _domain.Counters.Increment($"pv-rdmsr-refused-{index:x}");
            _domain.TracePv($"rdmsr 0x{index:x} refused");
            return false;
        }

        cpu.SetRegister(0, v & 0xFFFF_FFFF);
        cpu.SetRegister(2, v >> 32);
        return true;
    }

    /// <summary>The vendor the guest sees ("AuthenticAMD": EBX of leaf 0 is "Auth").</summary>
    private static bool IsAmd(IParavirtualCpuContext cpu) => cpu.Cpuid(0, 0).Ebx == 0x6874_7541;

    private bool ReadControlRegister(IParavirtualCpuContext cpu, PvVcpuState vcpu, int control, int register)
    {
        ulong? value = control switch
        {
            0 => GuestCr0 | (cpu.TaskSwitched ? 8UL : 0),
            2 => _domain.VcpuInfoOf(cpu.VcpuId) is var info and not 0 ? Memory.Read<ulong>(info + 16) : 0,
            3 => _domain.PvPaging(vcpu.Id).KernelBase << 12,
            4 => Cr4GuestVisible | vcpu.GuestCr4,
            _ => null,
        };
        if (value is not ulong v)
        {
            return false;
        }

        cpu.SetRegister(register, v);
        return true;
    }

    /// <summary>
    /// MOV to CRn from the guest kernel, as Xen's write_cr (pv/emul-priv-op.c): CR0 may change TS
    /// only; CR2 is the vcpu_info copy; CR3 is new_baseptr (a machine address: PV is not
    /// translated); CR4 keeps Xen's bits and takes the guest-controlled ones (TSD, DE, FSGSBASE,
    /// OSXSAVE) that the CPUID policy offers — Linux's xen_write_cr4 writes CR4 this way. Anything
    /// else reflects the #GP.
    /// </summary>
    private bool WriteControlRegister(IParavirtualCpuContext cpu, PvVcpuState vcpu, int control, int register)
    {
        ulong value = cpu.GetRegister(register);
        switch (control)
        {
            case 0:
                if (((value ^ GuestCr0) & ~8UL) != 0)
                {
                    _domain.TracePv($"mov to CR0 0x{value:x} refused: only TS may change");
                    return false;
                }

                cpu.TaskSwitched = (value & 8) != 0;
                return true;

            case 2:
                ulong info = _domain.VcpuInfoOf(cpu.VcpuId);
                if (info != 0)
                {
                    Memory.Write(info + 16, value);
                }

                return true;

            case 3:
                return _tables.MmuextOp(_domain.PvPaging(vcpu.Id), PvMmuextCommand.NewBaseptr, value >> 12, 0) == 0;

            case 4:
                ulong offered = Cr4Offered(cpu);
                ulong guest = value & offered;
                ulong real = (cpu.Cr4 & ~(Cr4Tsd | Cr4De | Cr4FsGsBase | Cr4OsXsave)) | guest;
                if (!cpu.TrySetCr4(real))
                {
                    return false;
                }

                vcpu.GuestCr4 = guest;
                return true;

            default:
                return false;
        }
    }

    /// <summary>pv_fixup_guest_cr4's policy: the guest-controlled CR4 bits whose CPUID features the guest has.</summary>
    private static ulong Cr4Offered(IParavirtualCpuContext cpu)
    {
        CpuidResult leaf1 = cpu.Cpuid(1, 0);
        CpuidResult leaf7 = cpu.Cpuid(7, 0);
        return ((leaf1.Edx & (1u << 4)) != 0 ? Cr4Tsd : 0)
            | ((leaf1.Edx & (1u << 2)) != 0 ? Cr4De : 0)
            | ((leaf7.Ebx & 1u) != 0 ? Cr4FsGsBase : 0)
            | ((leaf1.Ecx & (1u << 26)) != 0 ? Cr4OsXsave : 0);
    }
}
