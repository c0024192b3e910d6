using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_run: the page shared between KVM and the VMM through mmap of the vCPU fd.
/// The exit-specific union starts at offset 32 and is 256 bytes; the synced registers follow.
/// The mapping itself is larger (KVM_GET_VCPU_MMAP_SIZE): port-I/O data lives behind this
/// struct at <see cref="KvmRunIo.DataOffset"/>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 2352)]
public struct KvmRun
{
    /// <summary>Offset of the exit-reason union in the struct.</summary>
    public const int ExitUnionOffset = 32;

    [FieldOffset(0)]
    public byte RequestInterruptWindow;

    /// <summary>When non-zero, KVM_RUN returns -EINTR at once instead of entering the guest.</summary>
    [FieldOffset(1)]
    public byte ImmediateExit;

    [FieldOffset(8)]
    public KvmExitReason ExitReason;

    [FieldOffset(12)]
    public byte ReadyForInterruptInjection;

    [FieldOffset(13)]
    public byte IfFlag;

    [FieldOffset(14)]
    public ushort Flags;

    [FieldOffset(16)]
    public ulong Cr8;

    [FieldOffset(24)]
    public ulong ApicBase;

    [FieldOffset(ExitUnionOffset)]
    public ulong HardwareExitReason;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunFailEntry FailEntry;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunIo Io;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunMmio Mmio;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunInternal Internal;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunSystemEvent SystemEvent;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunMsr Msr;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunXen Xen;

    [FieldOffset(288)]
    public ulong KvmValidRegs;

    [FieldOffset(296)]
    public ulong KvmDirtyRegs;
}
