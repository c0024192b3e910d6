using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.msr (KVM_EXIT_X86_RDMSR/WRMSR): the MSR, the value, and the VMM's verdict (Error 1 = #GP).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct KvmRunMsr
{
    [FieldOffset(0)] public byte Error;
    [FieldOffset(8)] public uint Reason;
    [FieldOffset(12)] public uint Index;
    [FieldOffset(16)] public ulong Data;
}
