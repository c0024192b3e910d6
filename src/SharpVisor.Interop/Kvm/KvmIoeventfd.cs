using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_ioeventfd (KVM_IOEVENTFD): a guest write to an address signals an eventfd instead of exiting.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct KvmIoeventfd
{
    public const uint FlagDatamatch = 1 << 0;
    public const uint FlagPio = 1 << 1;
    public const uint FlagDeassign = 1 << 2;

    [FieldOffset(0)] public ulong Datamatch;
    [FieldOffset(8)] public ulong Addr;
    [FieldOffset(16)] public uint Len;
    [FieldOffset(20)] public int Fd;
    [FieldOffset(24)] public uint Flags;
}
