using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.internal (KVM_EXIT_INTERNAL_ERROR): a suberror and up to 16 words of detail.</summary>
[StructLayout(LayoutKind.Explicit, Size = 136)]
public unsafe struct KvmRunInternal
{
    public const int MaxData = 16;

    /// <summary>KVM_INTERNAL_ERROR_EMULATION: the instruction emulator failed.</summary>
    public const uint SuberrorEmulation = 1;

    /// <summary>KVM_INTERNAL_ERROR_SIMUL_EX: an exception while delivering an exception.</summary>
    public const uint SuberrorSimultaneousException = 2;

    /// <summary>KVM_INTERNAL_ERROR_DELIVERY_EV: an exit while delivering an event.</summary>
    public const uint SuberrorDeliveryEvent = 3;

    /// <summary>KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON.</summary>
    public const uint SuberrorUnexpectedExitReason = 4;

    [FieldOffset(0)]
    public uint Suberror;

    [FieldOffset(4)]
    public uint NData;

    [FieldOffset(8)]
    public fixed ulong Data[MaxData];
}
