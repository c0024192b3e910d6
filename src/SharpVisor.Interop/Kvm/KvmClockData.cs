using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_clock_data: the VM's kvmclock value (ns) with flags, realtime and host TSC.</summary>
[StructLayout(LayoutKind.Explicit, Size = 48)]
public unsafe struct KvmClockData
{
    [FieldOffset(0)] public ulong Clock;
    [FieldOffset(8)] public uint Flags;
    [FieldOffset(16)] public ulong Realtime;
    [FieldOffset(24)] public ulong HostTsc;
}
