using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_msr_entry: one model-specific register and its value.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmMsrEntry
{
    [FieldOffset(0)] public uint Index;
    [FieldOffset(4)] public uint Reserved;
    [FieldOffset(8)] public ulong Data;
}
