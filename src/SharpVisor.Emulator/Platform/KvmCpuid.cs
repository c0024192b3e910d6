namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The KVM paravirtual CPUID leaves the software accelerator advertises, so Linux finds kvmclock
/// and needs no TSC calibration. The CPU must also set CPUID.1:ECX bit 31 (hypervisor present).
/// </summary>
public static class KvmCpuid
{
    public const uint SignatureLeaf = 0x4000_0000;
    public const uint FeaturesLeaf = 0x4000_0001;

    /// <summary>"KVMKVMKVM\0\0\0" in EBX, ECX, EDX.</summary>
    public const uint SignatureEbx = 0x4B4D_564B;
    public const uint SignatureEcx = 0x564B_4D56;
    public const uint SignatureEdx = 0x0000_004D;

    /// <summary>KVM_FEATURE_CLOCKSOURCE: the legacy kvmclock MSRs 0x11/0x12.</summary>
    public const uint FeatureClockSource = 1u << 0;

    /// <summary>KVM_FEATURE_NOP_IO_DELAY: the guest may skip its port-0x80 delays.</summary>
    public const uint FeatureNopIoDelay = 1u << 1;

    /// <summary>KVM_FEATURE_CLOCKSOURCE2: kvmclock at MSRs 0x4b564d00/0x4b564d01.</summary>
    public const uint FeatureClockSource2 = 1u << 3;

    /// <summary>KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: the guest may trust PVCLOCK_TSC_STABLE_BIT.</summary>
    public const uint FeatureClockSourceStableBit = 1u << 24;

    /// <summary>What the emulator implements: kvmclock (new MSRs) with a stable TSC, and no need for I/O delays.</summary>
    public const uint Features = FeatureClockSource2 | FeatureClockSourceStableBit | FeatureNopIoDelay;

    /// <summary>The hypervisor leaves (0x40000000 and 0x40000001); false for any other leaf.</summary>
    public static bool TryGetLeaf(uint leaf, out uint eax, out uint ebx, out uint ecx, out uint edx)
    {
        switch (leaf)
        {
            case SignatureLeaf:
                eax = FeaturesLeaf;
                ebx = SignatureEbx;
                ecx = SignatureEcx;
                edx = SignatureEdx;
                return true;
            case FeaturesLeaf:
                eax = Features;
                ebx = 0;
                ecx = 0;
                edx = 0;
                return true;
            default:
                eax = ebx = ecx = edx = 0;
                return false;
        }
    }
}
