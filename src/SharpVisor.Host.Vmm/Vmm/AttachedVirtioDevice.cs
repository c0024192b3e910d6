using SharpVisor.Devices.Virtio;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// A virtio device on PCI bus 0: its name in metrics and logs, the device, its transport and slot.
/// A name is unique within its <see cref="Kind"/> only: Firecracker's drives and NICs have ids of
/// their own (firecracker-go-sdk names both its first drive and its first NIC "1").
/// </summary>
public sealed record AttachedVirtioDevice(string Name, VirtioDevice Device, VirtioPciDevice Transport)
{
    public int Slot => Transport.Slot;

    /// <summary>"block", "net", "entropy", "balloon", "console" or "vsock": Firecracker's metric groups where it has them.</summary>
    public string Kind => KindOf(Device);

    public static string KindOf(VirtioDevice device) => device switch
    {
        VirtioBlockDevice => "block",
        VirtioNetDevice => "net",
        VirtioRngDevice => "entropy",
        VirtioBalloonDevice => "balloon",
        VirtioConsoleDevice => "console",
        _ => "vsock",
    };
}
