namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private ulong _platformMmioStart;
    private ulong _platformMmioSize;

    /// <summary>
    /// Where the Xen platform PCI device's memory BAR is now (an HVM domain; size 0: none). Linux's
    /// platform driver maps the grant-table frames there (add_to_physmap into the BAR), so frames
    /// in this range are accepted although they lie in the MMIO hole.
    /// </summary>
    public void SetPlatformMmio(ulong address, ulong size)
    {
        if (address + size < address)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "the platform BAR wraps the address space");
        }

        lock (_lock)
        {
            _platformMmioStart = address;
            _platformMmioSize = size;
        }
    }

    private bool InPlatformMmio(ulong address)
    {
        lock (_lock)
        {
            return _platformMmioSize != 0 && address >= _platformMmioStart && address - _platformMmioStart < _platformMmioSize;
        }
    }
}
