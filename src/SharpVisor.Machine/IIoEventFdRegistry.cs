using SharpVisor.Interop;

namespace SharpVisor.Machine;

/// <summary>
/// A machine that can turn a guest write into an eventfd signal without leaving the kernel
/// (KVM's ioeventfd). Device data paths register their doorbells here so a vCPU's notify
/// write costs no exit to user space; machines without it deliver the write to the MMIO bus.
/// </summary>
public interface IIoEventFdRegistry
{
    /// <summary>
    /// A guest write of <paramref name="length"/> bytes to <paramref name="address"/> (a port
    /// when <paramref name="isPio"/>) signals <paramref name="eventFd"/> — only when the written
    /// value equals <paramref name="datamatch"/>, if one is given.
    /// </summary>
    void RegisterIoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch = null);

    void UnregisterIoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch = null);
}
