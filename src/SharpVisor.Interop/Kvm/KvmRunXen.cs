using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// kvm_run.xen, struct kvm_xen_exit (KVM_EXIT_XEN). For <see cref="TypeHcall"/>: the caller's mode and
/// CPL, the op (RAX), its six arguments in the ABI's order (64-bit: RDI RSI RDX R10 R8 R9; 32-bit:
/// EBX ECX EDX ESI EDI EBP) and the result KVM puts in RAX when the vCPU runs again.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 80)]
public unsafe struct KvmRunXen
{
    /// <summary>KVM_EXIT_XEN_HCALL.</summary>
    public const uint TypeHcall = 1;

    public const int ParameterCount = 6;

    [FieldOffset(0)] public uint Type;
    [FieldOffset(8)] public uint LongMode;
    [FieldOffset(12)] public uint Cpl;
    [FieldOffset(16)] public ulong Input;
    [FieldOffset(24)] public ulong Result;
    [FieldOffset(32)] public fixed ulong Params[ParameterCount];
}
