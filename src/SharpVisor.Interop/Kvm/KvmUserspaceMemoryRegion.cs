using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_userspace_memory_region: one memory slot (guest physical range backed by host memory).</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct KvmUserspaceMemoryRegion
{
    /// <summary>KVM_MEM_LOG_DIRTY_PAGES: track written pages for KVM_GET_DIRTY_LOG.</summary>
    public const uint MemLogDirtyPages = 1 << 0;

    /// <summary>KVM_MEM_READONLY: guest writes exit to user space as MMIO.</summary>
    public const uint MemReadonly = 1 << 1;

    [FieldOffset(0)] public uint Slot;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public ulong GuestPhysAddr;

    /// <summary>Size in bytes; 0 deletes the slot.</summary>
    [FieldOffset(16)] public ulong MemorySize;
    [FieldOffset(24)] public ulong UserspaceAddr;
}
