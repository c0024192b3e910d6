using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen;

/// <summary>
/// Xen's CPUID leaves at 0x40000000 (xen/include/public/arch-x86/cpuid.h): the signature, the
/// version, the hypercall-page MSR, and the HVM features: vCPU id in EBX, the per-vCPU upcall
/// vector (HVMOP_set_evtchn_upcall_vector).
/// </summary>
public static class XenCpuid
{
    public const uint Base = 0x4000_0000;
    public const uint LastLeaf = Base + 4;

    /// <summary>"XenVMMXenVMM".</summary>
    public const uint SignatureEbx = 0x566E_6558;
    public const uint SignatureEcx = 0x65584D4D;
    public const uint SignatureEdx = 0x4D4D_566E;

    public const int MajorVersion = 4;
    public const int MinorVersion = 17;

    /// <summary>The MSR the guest writes its hypercall page's address to (leaf 2, EBX).</summary>
    public const uint HypercallPageMsr = 0x4000_0000;

    public const uint HvmVcpuIdPresent = 1u << 3;
    public const uint HvmUpcallVector = 1u << 6;

    public static bool TryGetLeaf(uint leaf, int vcpuId, out CpuidResult result)
    {
        result = leaf switch
        {
            Base => new CpuidResult(LastLeaf, SignatureEbx, SignatureEcx, SignatureEdx),
            Base + 1 => new CpuidResult((MajorVersion << 16) | MinorVersion, 0, 0, 0),
            Base + 2 => new CpuidResult(1, HypercallPageMsr, 0, 0),   // one hypercall page
            Base + 3 => new CpuidResult(0, 0, 0, 0),                   // no TSC leaves: the guest reads pvclock
            Base + 4 => new CpuidResult(HvmVcpuIdPresent | HvmUpcallVector, (uint)vcpuId, 0, 0),
            _ => default,
        };
        return leaf is >= Base and <= LastLeaf;
    }
}
