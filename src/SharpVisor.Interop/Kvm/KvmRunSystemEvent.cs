using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.system_event (KVM_EXIT_SYSTEM_EVENT): a guest-wide shutdown, reset or crash.</summary>
[StructLayout(LayoutKind.Explicit, Size = 136)]
public unsafe struct KvmRunSystemEvent
{
    public const int MaxData = 16;

    [FieldOffset(0)]
    public KvmSystemEventType Type;

    [FieldOffset(4)]
    public uint NData;

    /// <summary>Before KVM_CAP_SYSTEM_EVENT_DATA this was a single flags word; it aliases Data[0].</summary>
    [FieldOffset(8)]
    public ulong Flags;

    [FieldOffset(8)]
    public fixed ulong Data[MaxData];
}
