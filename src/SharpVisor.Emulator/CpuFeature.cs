namespace SharpVisor.Emulator;

/// <summary>Instruction-set and platform features a <see cref="CpuModel"/> can advertise through CPUID.</summary>
[Flags]
public enum CpuFeature : ulong
{
    None = 0,

    // Instruction sets implemented by the core.
    Fpu = 1UL << 0,
    Tsc = 1UL << 1,
    Cx8 = 1UL << 2,
    Cmov = 1UL << 3,
    Clflush = 1UL << 4,
    Mmx = 1UL << 5,
    Fxsr = 1UL << 6,
    Sse = 1UL << 7,
    Sse2 = 1UL << 8,
    Sse3 = 1UL << 9,
    Ssse3 = 1UL << 10,
    Cx16 = 1UL << 11,
    Sse41 = 1UL << 12,
    Sse42 = 1UL << 13,
    Movbe = 1UL << 14,
    Popcnt = 1UL << 15,
    Xsave = 1UL << 16,
    Rdrand = 1UL << 17,
    Bmi1 = 1UL << 18,
    Bmi2 = 1UL << 19,
    Erms = 1UL << 20,
    Fsrm = 1UL << 21,
    LahfLm = 1UL << 22,
    Lzcnt = 1UL << 23,
    Rdtscp = 1UL << 24,
    LongMode = 1UL << 25,
    Syscall = 1UL << 26,
    NoExecute = 1UL << 27,
    Adx = 1UL << 28,
    Rdseed = 1UL << 29,
    Pclmulqdq = 1UL << 30,

    /// <summary>
    /// AMD's misaligned SSE mode (CPUID 8000_0001H:ECX[7] MisAlignSse): MXCSR.MM (bit 17) is writable
    /// and, when set, lets legacy SSE instructions that are not explicitly aligned access misaligned
    /// 16-byte operands. Reported only by an AMD model.
    /// </summary>
    MisalignedSse = 1UL << 31,

    // System features. The core implements paging (PSE, PAE, PGE, PAT, PSE-36, 1 GiB pages), MSRs,
    // SYSENTER, debug extensions and IA32_ARCH_CAPABILITIES; the platform adds the APIC family,
    // the hypervisor bit and TSC-related bits it backs.
    Vme = 1UL << 40,
    De = 1UL << 41,
    Pse = 1UL << 42,
    Msr = 1UL << 43,
    Pae = 1UL << 44,
    Mce = 1UL << 45,
    Apic = 1UL << 46,
    Sep = 1UL << 47,
    Mtrr = 1UL << 48,
    Pge = 1UL << 49,
    Mca = 1UL << 50,
    Pat = 1UL << 51,
    Pse36 = 1UL << 52,
    X2Apic = 1UL << 53,
    TscDeadline = 1UL << 54,
    Page1Gb = 1UL << 55,
    Hypervisor = 1UL << 56,
    InvariantTsc = 1UL << 57,
    Fsgsbase = 1UL << 58,

    /// <summary>IA32_ARCH_CAPABILITIES (CPUID.7.0:EDX[29]): the MSR says which speculation bugs the CPU lacks.</summary>
    ArchCapabilities = 1UL << 59,

    /// <summary>Supervisor-mode execution prevention (CPUID.7.0:EBX[7], CR4.SMEP): supervisor fetches from user pages fault.</summary>
    Smep = 1UL << 60,

    /// <summary>Supervisor-mode access prevention (CPUID.7.0:EBX[20], CR4.SMAP) with STAC/CLAC.</summary>
    Smap = 1UL << 61,

    /// <summary>User-mode instruction prevention (CPUID.7.0:ECX[2], CR4.UMIP): SGDT, SIDT, SLDT, SMSW and STR at CPL &gt; 0 are #GP.</summary>
    Umip = 1UL << 62,
}
