using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_dirty_log: KVM_GET_DIRTY_LOG's argument — a slot and where its bitmap goes (one bit per page, cleared by the call).</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmDirtyLog
{
    [FieldOffset(0)] public uint Slot;
    [FieldOffset(8)] public ulong DirtyBitmap;
}
