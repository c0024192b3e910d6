using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// The header of struct kvm_cpuid2; <see cref="NEnt"/> <see cref="KvmCpuidEntry2"/> entries follow it
/// directly in memory (a flexible array), so callers allocate header + entries in one buffer.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct KvmCpuid2
{
    [FieldOffset(0)] public uint NEnt;
    [FieldOffset(4)] public uint Padding;
}
