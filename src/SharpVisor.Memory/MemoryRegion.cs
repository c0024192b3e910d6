using SharpVisor.Interop;

namespace SharpVisor.Memory;

/// <summary>
/// One contiguous range of guest physical memory, backed by a memfd mapped into this
/// process. The memfd lets other processes (or KVM) share the same pages.
/// </summary>
public sealed unsafe partial class MemoryRegion : IDisposable
{
    private const int MapFixed = 0x10;

    private nint _host;
    private nint _reservation;
    private int _memfd;

    /// <param name="anonymous">
    /// Backed by private anonymous memory rather than a memfd (a map target, whose own page is
    /// only ever zeros: it costs no file descriptor, and no other process can be given it).
    /// </param>
    internal MemoryRegion(ulong guestPhysicalAddress, ulong size, bool readOnly, string name, bool anonymous = false)
    {
        if (size == 0 || (size & (PageSize - 1)) != 0)
        {
            throw new ArgumentException($"region size 0x{size:x} must be a non-zero multiple of 4 KiB", nameof(size));
        }

        if ((guestPhysicalAddress & (PageSize - 1)) != 0)
        {
            throw new ArgumentException($"region address 0x{guestPhysicalAddress:x} must be 4 KiB aligned", nameof(guestPhysicalAddress));
        }

        GuestPhysicalAddress = guestPhysicalAddress;
        Size = size;
        ReadOnly = readOnly;
        if (anonymous)
        {
            _memfd = -1;
            _reservation = LibC.Mmap(0, (nuint)(size + 2 * GuardSize), LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
            if (_reservation == LibC.MAP_FAILED)
            {
                _reservation = 0;
                throw LinuxException.FromLastError("mmap of a map target's reservation");
            }

            _host = LibC.Mmap(_reservation + (nint)GuardSize, (nuint)size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE | MapFixed, -1, 0);
            if (_host == LibC.MAP_FAILED)
            {
                LinuxException error = LinuxException.FromLastError("mmap of a map target");
                LibC.Munmap(_reservation, (nuint)(size + 2 * GuardSize));
                _reservation = 0;
                _host = 0;
                throw error;
            }

            return;
        }

        _memfd = LibC.MemfdCreate(name, LibC.MFD_CLOEXEC);
        LinuxException.ThrowIfFailed(_memfd, "memfd_create");
        if (LibC.Ftruncate(_memfd, (long)size) < 0)
        {
            LinuxException error = LinuxException.FromLastError("ftruncate of guest memory");
            LibC.Close(_memfd);
            throw error;
        }

        // An inaccessible guard page on each side: a host bug that runs off the end of guest
        // memory faults at once instead of corrupting a neighbouring mapping.
        _reservation = LibC.Mmap(0, (nuint)(size + 2 * GuardSize), LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
        if (_reservation == LibC.MAP_FAILED)
        {
            LinuxException error = LinuxException.FromLastError($"mmap of {size >> 20} MiB guest memory reservation");
            LibC.Close(_memfd);
            throw error;
        }

        // The host mapping is always writable: read-only applies to the guest (KVM slot flag),
        // the VMM itself writes ROM contents.
        _host = LibC.Mmap(_reservation + (nint)GuardSize, (nuint)size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_NORESERVE | MapFixed, _memfd, 0);
        if (_host == LibC.MAP_FAILED)
        {
            LinuxException error = LinuxException.FromLastError($"mmap of {size >> 20} MiB guest memory");
            LibC.Munmap(_reservation, (nuint)(size + 2 * GuardSize));
            LibC.Close(_memfd);
            throw error;
        }
    }

    public const ulong PageSize = 4096;

    /// <summary>Size of the PROT_NONE guard mapped just below and just above <see cref="HostAddress"/>.</summary>
    public const ulong GuardSize = PageSize;

    public ulong GuestPhysicalAddress { get; }

    public ulong Size { get; }

    public ulong End => GuestPhysicalAddress + Size;

    public bool ReadOnly { get; }

    /// <summary>Part of the guest's RAM (what a snapshot's memory file holds), not a ROM or a hypervisor-mapped frame.</summary>
    public bool IsRam { get; internal init; }

    /// <summary>
    /// A page outside RAM that exists only to show another memory file's page (a Xen grant map
    /// whose target a driver domain took from unpopulated address space): neither RAM nor a page
    /// the guest may hand to the hypervisor as its own (<see cref="GuestMemory.AddMapTargetPage"/>).
    /// </summary>
    public bool IsMapTarget { get; internal init; }

    /// <summary>Start of the host mapping of this region.</summary>
    public nint HostAddress => _host;

    /// <summary>The memory file behind the region; -1 for an anonymous one (a map target).</summary>
    public int MemFd => _memfd;

    public bool Contains(ulong address, ulong length) =>
        address >= GuestPhysicalAddress && length <= Size && address - GuestPhysicalAddress <= Size - length;

    public void Dispose()
    {
        if (_reservation != 0)
        {
            LibC.Munmap(_reservation, (nuint)(Size + 2 * GuardSize));
            _reservation = 0;
            _host = 0;
        }

        if (_memfd >= 0)
        {
            LibC.Close(_memfd);
            _memfd = -1;
        }
    }
}
