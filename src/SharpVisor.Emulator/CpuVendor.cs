namespace SharpVisor.Emulator;

/// <summary>
/// The processor vendor a <see cref="CpuModel"/> presents. Besides the CPUID strings and leaves,
/// the vendor decides the behaviours where Intel's SDM and AMD's APM differ or leave a result
/// undefined (docs/emulator.md, "Vendor profiles").
/// </summary>
public enum CpuVendor
{
    /// <summary>GenuineIntel, as the Intel SDM describes it.</summary>
    Intel,

    /// <summary>AuthenticAMD, as the AMD APM describes it.</summary>
    Amd,
}
