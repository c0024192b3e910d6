namespace SharpVisor.Memory;

/// <summary>
/// Decides whether a device may write (DMA) into a guest-physical range: kernel protection
/// refuses writes into the guest's locked kernel (docs/security.md). Asked by the device
/// paths before they write, through <see cref="GuestMemory.AllowsDeviceWrite"/>.
/// </summary>
public interface IDeviceWriteGuard
{
    bool AllowsDeviceWrite(ulong address, ulong length);
}
