using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_cpuid_entry2: the result of CPUID for one leaf (function) and subleaf (index).</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct KvmCpuidEntry2
{
    /// <summary>KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the subleaf (ECX input) selects this entry.</summary>
    public const uint FlagSignificantIndex = 1 << 0;

    [FieldOffset(0)] public uint Function;
    [FieldOffset(4)] public uint Index;
    [FieldOffset(8)] public uint Flags;
    [FieldOffset(12)] public uint Eax;
    [FieldOffset(16)] public uint Ebx;
    [FieldOffset(20)] public uint Ecx;
    [FieldOffset(24)] public uint Edx;
}
