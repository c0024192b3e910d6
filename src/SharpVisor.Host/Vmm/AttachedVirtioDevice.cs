using SharpVisor.Devices.Virtio;

namespace SharpVisor.Host.Vmm;

/// <summary>A virtio device on PCI bus 0: its name in metrics and logs, the device, its transport and slot.</summary>
public sealed record AttachedVirtioDevice(string Name, VirtioDevice Device, VirtioPciDevice Transport)
{
    public int Slot => Transport.Slot;
}
