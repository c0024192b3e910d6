namespace SharpVisor.Emulator;

/// <summary>
/// The processor the guest sees: vendor, family/model, and exactly the features the core
/// implements. The vendor (<see cref="CpuVendor"/>) also selects the behaviours where Intel and
/// AMD processors differ (<see cref="X86Cpu"/> reads it; docs/emulator.md lists them).
/// <see cref="Default"/> is the Intel profile with every instruction set the core executes and no
/// platform feature (the platform layer adds those it implements); <see cref="ForVendor"/> gives
/// either vendor's profile.
/// </summary>
public sealed class CpuModel
{
    /// <summary>Instruction sets the core implements (see docs/emulator.md).</summary>
    public const CpuFeature ImplementedInstructionSets =
        CpuFeature.Fpu | CpuFeature.Tsc | CpuFeature.Cx8 | CpuFeature.Cmov | CpuFeature.Clflush
        | CpuFeature.Mmx | CpuFeature.Fxsr | CpuFeature.Sse | CpuFeature.Sse2 | CpuFeature.Sse3 | CpuFeature.Ssse3
        | CpuFeature.Cx16 | CpuFeature.Sse41 | CpuFeature.Sse42 | CpuFeature.Movbe | CpuFeature.Popcnt
        | CpuFeature.Xsave | CpuFeature.Rdrand | CpuFeature.Bmi1 | CpuFeature.Bmi2 | CpuFeature.Erms
        | CpuFeature.Fsrm | CpuFeature.LahfLm | CpuFeature.Lzcnt | CpuFeature.Rdtscp | CpuFeature.LongMode
        | CpuFeature.Syscall | CpuFeature.NoExecute | CpuFeature.Adx | CpuFeature.Rdseed;

    /// <summary>
    /// System features the core implements: paging extensions (the MMU), MSRs, SYSENTER/SYSEXIT,
    /// debug extensions (CR4.DE), IA32_ARCH_CAPABILITIES, and the supervisor protections SMEP, SMAP
    /// (with STAC/CLAC) and UMIP that a guest kernel turns on and kernel protection pins.
    /// </summary>
    public const CpuFeature ImplementedSystemFeatures =
        CpuFeature.De | CpuFeature.Pse | CpuFeature.Msr | CpuFeature.Pae | CpuFeature.Sep | CpuFeature.Pge
        | CpuFeature.Pat | CpuFeature.Pse36 | CpuFeature.Page1Gb | CpuFeature.ArchCapabilities
        | CpuFeature.Smep | CpuFeature.Smap | CpuFeature.Umip;

    public const string IntelVendorString = "GenuineIntel";

    public const string AmdVendorString = "AuthenticAMD";

    /// <summary>Features only an AMD model reports (the AMD profile adds them).</summary>
    public const CpuFeature AmdOnlyFeatures = CpuFeature.MisalignedSse;

    /// <param name="features">What CPUID advertises; AMD-only features are dropped from an Intel model.</param>
    /// <param name="vendor">The vendor: CPUID strings and leaves, and the vendor-specific behaviours.</param>
    public CpuModel(CpuFeature features, CpuVendor vendor = CpuVendor.Intel, string brand = "SharpVisor x86-64 emulated CPU")
    {
        if (!Enum.IsDefined(vendor))
        {
            throw new ArgumentOutOfRangeException(nameof(vendor), vendor, "unknown CPU vendor");
        }

        Features = vendor == CpuVendor.Amd ? features : features & ~AmdOnlyFeatures;
        Vendor = vendor;
        Brand = brand.Length > 47 ? brand[..47] : brand;

        // Intel: family 6 model 0x3A stepping 9 (a generic Core signature). AMD: family 17H
        // (extended family 8 + base 0xF) model 31H stepping 0, a Zen 2 EPYC signature.
        Signature = vendor == CpuVendor.Amd ? 0x0083_0F10u : 0x0003_06A9u;
    }

    /// <summary>Every instruction set and system feature the core implements; no platform device (APIC, hypervisor leaves). Intel.</summary>
    public static CpuModel Default { get; } = ForVendor(CpuVendor.Intel);

    /// <summary>The profile of <paramref name="vendor"/>: every instruction set and system feature the core implements for it.</summary>
    public static CpuModel ForVendor(CpuVendor vendor, CpuFeature extra = 0) =>
        new(ImplementedInstructionSets | ImplementedSystemFeatures | AmdOnlyFeatures | extra, vendor);

    public CpuFeature Features { get; }

    public CpuVendor Vendor { get; }

    /// <summary>The CPUID leaf-0 vendor string: "GenuineIntel" or "AuthenticAMD".</summary>
    public string VendorString => Vendor == CpuVendor.Amd ? AmdVendorString : IntelVendorString;

    public string Brand { get; }

    /// <summary>CPUID 1:EAX (family, model, stepping); the vendor's by default.</summary>
    public uint Signature { get; init; }

    /// <summary>
    /// MXCSR_MASK (FXSAVE bytes 28-31): the MXCSR bits software may set. AMD's misaligned SSE mode
    /// adds MM (bit 17) to the 16 bits both vendors have (DAZ included).
    /// </summary>
    public uint MxcsrMask => Vendor == CpuVendor.Amd && Has(CpuFeature.MisalignedSse) ? 0x0002_FFFFu : 0xFFFFu;

    /// <summary>Nominal TSC frequency that RDTSC counts at.</summary>
    public ulong TscFrequency { get; init; } = 2_000_000_000;

    /// <summary>
    /// The core crystal clock CPUID 15H reports (TSC = crystal × TscFrequency / CrystalFrequency):
    /// Linux then knows the TSC rate without calibrating, and takes the crystal for the local APIC
    /// timer's clock, which is 1 GHz in the software platform (as KVM's APIC bus).
    /// </summary>
    public ulong CrystalFrequency { get; init; } = 1_000_000_000;

    /// <summary>MAXPHYADDR (CPUID 80000008H:EAX[7:0]); the MMU's <c>MmuOptions.PhysicalAddressBits</c> must match.</summary>
    public int PhysicalAddressBits { get; init; } = 40;

    /// <summary>Size of the XSAVE area for the components the core saves (x87 and SSE).</summary>
    public const uint XsaveAreaSize = 512 + 64;

    /// <summary>XCR0 components the core supports: x87 (bit 0) and SSE (bit 1).</summary>
    public const ulong SupportedXcr0 = 3;

    public bool Has(CpuFeature feature) => (Features & feature) == feature;

    private uint Bit(CpuFeature feature, int bit) => Has(feature) ? 1u << bit : 0;

    /// <summary>The CPUID result for <paramref name="leaf"/>/<paramref name="subleaf"/> given the control state that shows through (OSXSAVE, APIC id).</summary>
    public (uint Eax, uint Ebx, uint Ecx, uint Edx) Query(uint leaf, uint subleaf, bool osxsave, uint apicId = 0)
    {
        switch (leaf)
        {
            case 0:
                // AMD processors have no leaf 15H (the TSC/crystal ratio is Intel's).
                return (Vendor == CpuVendor.Amd ? 0xDu : 0x15u, VendorWord(0), VendorWord(2), VendorWord(1));
            case 1:
            {
                uint ebx = (apicId << 24) | (1u << 16) | (8u << 8); // CLFLUSH line size 8*8 bytes, 1 logical CPU
                uint ecx = Bit(CpuFeature.Sse3, 0) | Bit(CpuFeature.Pclmulqdq, 1) | Bit(CpuFeature.Ssse3, 9)
                    | Bit(CpuFeature.Cx16, 13) | Bit(CpuFeature.Sse41, 19) | Bit(CpuFeature.Sse42, 20)
                    | Bit(CpuFeature.X2Apic, 21) | Bit(CpuFeature.Movbe, 22) | Bit(CpuFeature.Popcnt, 23)
                    | Bit(CpuFeature.TscDeadline, 24) | Bit(CpuFeature.Xsave, 26)
                    | (Has(CpuFeature.Xsave) && osxsave ? 1u << 27 : 0) | Bit(CpuFeature.Rdrand, 30)
                    | Bit(CpuFeature.Hypervisor, 31);
                uint edx = Bit(CpuFeature.Fpu, 0) | Bit(CpuFeature.Vme, 1) | Bit(CpuFeature.De, 2) | Bit(CpuFeature.Pse, 3)
                    | Bit(CpuFeature.Tsc, 4) | Bit(CpuFeature.Msr, 5) | Bit(CpuFeature.Pae, 6) | Bit(CpuFeature.Mce, 7)
                    | Bit(CpuFeature.Cx8, 8) | Bit(CpuFeature.Apic, 9) | Bit(CpuFeature.Sep, 11) | Bit(CpuFeature.Mtrr, 12)
                    | Bit(CpuFeature.Pge, 13) | Bit(CpuFeature.Mca, 14) | Bit(CpuFeature.Cmov, 15) | Bit(CpuFeature.Pat, 16)
                    | Bit(CpuFeature.Pse36, 17) | Bit(CpuFeature.Clflush, 19) | Bit(CpuFeature.Mmx, 23)
                    | Bit(CpuFeature.Fxsr, 24) | Bit(CpuFeature.Sse, 25) | Bit(CpuFeature.Sse2, 26);
                return (Signature, ebx, ecx, edx);
            }

            case 7 when subleaf == 0:
            {
                // Bit 13: FCS and FDS are deprecated (saved as zero), a property of Intel's x87; AMD
                // processors save both selectors (and do not set the bit).
                uint ebx = Bit(CpuFeature.Fsgsbase, 0) | Bit(CpuFeature.Bmi1, 3) | Bit(CpuFeature.Smep, 7) | Bit(CpuFeature.Bmi2, 8)
                    | Bit(CpuFeature.Erms, 9) | (Vendor == CpuVendor.Intel ? Bit(CpuFeature.Fpu, 13) : 0)
                    | Bit(CpuFeature.Rdseed, 18) | Bit(CpuFeature.Adx, 19) | Bit(CpuFeature.Smap, 20);
                uint ecx = Bit(CpuFeature.Umip, 2);
                uint edx = Bit(CpuFeature.Fsrm, 4) | Bit(CpuFeature.ArchCapabilities, 29);
                return (0, ebx, ecx, edx);
            }

            case 0xD when Has(CpuFeature.Xsave):
                return subleaf switch
                {
                    // Supported components, size for the enabled ones, size for all.
                    0 => ((uint)SupportedXcr0, XsaveAreaSize, XsaveAreaSize, 0),
                    1 => (0, 0, 0, 0),
                    _ => (0, 0, 0, 0),
                };

            case 0x15 when Vendor == CpuVendor.Intel:
            {
                // TSC/crystal ratio as a fraction, and the crystal in Hz.
                ulong divisor = GreatestCommonDivisor(TscFrequency, CrystalFrequency);
                return ((uint)(CrystalFrequency / divisor), (uint)(TscFrequency / divisor), (uint)CrystalFrequency, 0);
            }

            case 0x8000_0000:
                // AMD repeats the vendor string here; Intel returns zeros. AMD goes up to 8000_0021H
                // for its SRSO_NO bit.
                return Vendor == CpuVendor.Amd
                    ? (0x8000_0021, VendorWord(0), VendorWord(2), VendorWord(1))
                    : (0x8000_0008, 0, 0, 0);
            case 0x8000_0001:
            {
                uint ecx = Bit(CpuFeature.LahfLm, 0) | Bit(CpuFeature.Lzcnt, 5) | Bit(CpuFeature.MisalignedSse, 7);
                uint edx = Bit(CpuFeature.Syscall, 11) | Bit(CpuFeature.NoExecute, 20) | Bit(CpuFeature.Page1Gb, 26)
                    | Bit(CpuFeature.Rdtscp, 27) | Bit(CpuFeature.LongMode, 29);
                uint eax = 0;
                if (Vendor == CpuVendor.Amd)
                {
                    // AMD: the signature again, and leaf 1's EDX bits 0-9, 12-17, 23 and 24 mirrored.
                    eax = Signature;
                    edx |= Query(1, 0, osxsave, apicId).Edx & 0x0183_F3FF;
                }

                return (eax, 0, ecx, edx);
            }

            case 0x8000_0002:
            case 0x8000_0003:
            case 0x8000_0004:
                return BrandWords((int)(leaf - 0x8000_0002));
            case 0x8000_0007:
                return (0, 0, 0, Bit(CpuFeature.InvariantTsc, 8));
            case 0x8000_0008:
                // MAXPHYADDR, 48-bit linear addresses; on AMD, BTC_NO (EBX[29]): an emulator has no branch
                // predictor to poison, and without the bit Linux puts a return thunk on every kernel RET
                // (retbleed) — work QEMU's qemu64 guest does not do.
                return ((uint)PhysicalAddressBits | (48u << 8), Vendor == CpuVendor.Amd ? 1u << 29 : 0, 0, 0);
            case 0x8000_0021 when Vendor == CpuVendor.Amd:
                // SRSO_NO (EAX[29]): no return-address speculation either, so no "safe RET" thunk.
                return (1u << 29, 0, 0, 0);
            default:
                return (0, 0, 0, 0);
        }
    }

    private static ulong GreatestCommonDivisor(ulong a, ulong b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return Math.Max(a, 1);
    }

    private uint VendorWord(int index)
    {
        string text = VendorString;
        return (uint)text[index * 4] | (uint)text[(index * 4) + 1] << 8 | (uint)text[(index * 4) + 2] << 16 | (uint)text[(index * 4) + 3] << 24;
    }

    private (uint, uint, uint, uint) BrandWords(int part)
    {
        Span<uint> words = stackalloc uint[4];
        for (int w = 0; w < 4; w++)
        {
            uint value = 0;
            for (int b = 0; b < 4; b++)
            {
                int i = (part * 16) + (w * 4) + b;
                uint c = i < Brand.Length ? Brand[i] : 0u;
                value |= (c & 0xFF) << (b * 8);
            }

            words[w] = value;
        }

        return (words[0], words[1], words[2], words[3]);
    }
}
