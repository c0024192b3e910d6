using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_pit_config (KVM_CREATE_PIT2).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct KvmPitConfig
{
    /// <summary>KVM_PIT_SPEAKER_DUMMY: KVM also claims port 0x61 (speaker/gate) so the guest can calibrate against it.</summary>
    public const uint SpeakerDummy = 1;

    [FieldOffset(0)] public uint Flags;
}
