using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Kvm;

/// <summary>Hardware-assisted virtualization through /dev/kvm.</summary>
public sealed class KvmAccelerator : IAccelerator
{
    public KvmAccelerator(string devicePath = KvmSystem.DefaultDevicePath)
    {
        DevicePath = devicePath;
    }

    public string Name => "kvm";

    public string DevicePath { get; }

    public IVirtualMachine CreateVirtualMachine(GuestMemory memory, int vcpuCount) =>
        KvmVirtualMachine.Create(memory, vcpuCount, DevicePath);
}
