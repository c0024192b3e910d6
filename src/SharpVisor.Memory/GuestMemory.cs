using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Interop;

namespace SharpVisor.Memory;

/// <summary>
/// Guest physical memory: a sorted set of non-overlapping regions. Every guest-supplied
/// address and length is validated here, once; callers get spans that cannot reach
/// outside the region they were checked against.
/// </summary>
public sealed unsafe partial class GuestMemory : IDisposable
{
    /// <summary>Start of the 32-bit MMIO hole (PCI windows, I/O APIC, local APIC).</summary>
    public const ulong MmioHoleStart = 0xC000_0000;

    /// <summary>RAM that does not fit below the hole continues here.</summary>
    public const ulong HighMemoryStart = 0x1_0000_0000;

    /// <summary>Largest guest RAM accepted (1 TiB): larger sizes are a typo, not a plan.</summary>
    public const ulong MaxRamSize = 1UL << 40;

    /// <summary>Smallest guest RAM accepted: the boot code needs the first megabyte and some.</summary>
    public const ulong MinRamSize = 2UL << 20;

    // Copy-on-write: readers (vCPU threads, device workers) iterate a snapshot while a region is
    // added at run time (a Xen grant frame the guest maps outside its RAM).
    private MemoryRegion[] _regions = [];
    private readonly object _addLock = new();
    private MemoryRegion? _lastHit;

    public IReadOnlyList<MemoryRegion> Regions => _regions;

    /// <summary>
    /// Who is told about writes from outside the guest's CPUs (the emulator's write tracker; null
    /// on KVM, whose CPUs see memory as it is). Devices writing through a span from
    /// <see cref="GetSpan"/> call <see cref="NotifyExternalWrite"/> when done; <see cref="Write"/>,
    /// <see cref="Write{T}"/>, <see cref="Fill"/> and <see cref="TryDiscard"/> do it themselves.
    /// </summary>
    public IExternalWriteObserver? ExternalWrites { get; set; }

    /// <summary>
    /// The pages written since the last fetch (<see cref="DirtyPageLog"/>): diff snapshots and
    /// migration rounds. Null for memory not laid out by <see cref="CreateRam"/>.
    /// </summary>
    public DirtyPageLog? DirtyLog { get; private set; }

    /// <summary>Total bytes of RAM (excluding read-only regions).</summary>
    public ulong RamSize { get; private set; }

    /// <summary>
    /// Lays out <paramref name="ramSize"/> bytes of RAM the way a PC does: up to
    /// <see cref="MmioHoleStart"/> at 0, the rest from 4 GiB.
    /// </summary>
    public static GuestMemory CreateRam(ulong ramSize)
    {
        if (ramSize < MinRamSize || ramSize > MaxRamSize)
        {
            throw new ArgumentOutOfRangeException(nameof(ramSize), $"guest memory must be between {MinRamSize >> 20} MiB and {MaxRamSize >> 30} GiB");
        }

        if ((ramSize & (MemoryRegion.PageSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ramSize), "guest memory must be a multiple of 4 KiB");
        }

        var memory = new GuestMemory();
        try
        {
            ulong low = Math.Min(ramSize, MmioHoleStart);
            memory.AddRegion(0, low);
            if (ramSize > low)
            {
                memory.AddRegion(HighMemoryStart, ramSize - low);
            }

            memory.DirtyLog = new DirtyPageLog(memory.Regions.Where(r => r.IsRam));
        }
        catch
        {
            memory.Dispose();
            throw;
        }

        return memory;
    }

    /// <summary>
    /// Adds a region (callable while vCPUs run). <paramref name="countAsRam"/> false: memory the
    /// hypervisor maps for the guest (grant frames) rather than the guest's RAM.
    /// </summary>
    public MemoryRegion AddRegion(ulong guestPhysicalAddress, ulong size, bool readOnly = false, string name = "sharpvisor-ram", bool countAsRam = true) =>
        AddRegion(guestPhysicalAddress, size, readOnly, name, countAsRam, mapTarget: false);

    private MemoryRegion AddRegion(ulong guestPhysicalAddress, ulong size, bool readOnly, string name, bool countAsRam, bool mapTarget)
    {
        if (guestPhysicalAddress + size < guestPhysicalAddress)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "region wraps the address space");
        }

        lock (_addLock)
        {
            foreach (MemoryRegion r in _regions)
            {
                if (guestPhysicalAddress < r.End && r.GuestPhysicalAddress < guestPhysicalAddress + size)
                {
                    throw new ArgumentException($"region 0x{guestPhysicalAddress:x}+0x{size:x} overlaps 0x{r.GuestPhysicalAddress:x}+0x{r.Size:x}");
                }
            }

            var region = new MemoryRegion(guestPhysicalAddress, size, readOnly, name, anonymous: mapTarget) { IsRam = !readOnly && countAsRam && !mapTarget, IsMapTarget = mapTarget };

            // Inserted in order (no sort): a driver domain adds thousands of one-page map targets.
            int at = 0;
            while (at < _regions.Length && _regions[at].GuestPhysicalAddress < guestPhysicalAddress)
            {
                at++;
            }

            MemoryRegion[] regions = [.. _regions.AsSpan(0, at), region, .. _regions.AsSpan(at)];
            Volatile.Write(ref _regions, regions);
            if (!readOnly && countAsRam)
            {
                RamSize += size;
            }

            RegionAdded?.Invoke(region);
            return region;
        }
    }

    /// <summary>
    /// A region was added (under the add lock, so in order): an accelerator whose own map of guest
    /// memory was built from <see cref="Regions"/> (the emulator's nested second-level table) adds
    /// it there — a Xen grant frame the guest maps outside its RAM while it runs.
    /// </summary>
    public event Action<MemoryRegion>? RegionAdded;

    /// <summary>The region holding all of [address, address+length), or null.</summary>
    public MemoryRegion? FindRegion(ulong address, ulong length = 1)
    {
        MemoryRegion? hit = _lastHit;
        if (hit is not null && hit.Contains(address, length))
        {
            return hit;
        }

        // Binary search: the regions are sorted and disjoint, and a Xen driver domain's grant-map
        // targets outside RAM add a region per page (thousands).
        MemoryRegion[] regions = Volatile.Read(ref _regions);
        int low = 0;
        int high = regions.Length - 1;
        while (low <= high)
        {
            int middle = low + ((high - low) >> 1);
            MemoryRegion r = regions[middle];
            if (address < r.GuestPhysicalAddress)
            {
                high = middle - 1;
            }
            else if (address >= r.End)
            {
                low = middle + 1;
            }
            else
            {
                if (!r.Contains(address, length))
                {
                    return null;
                }

                _lastHit = r;
                return r;
            }
        }

        return null;
    }

    public bool IsValid(ulong address, ulong length) => FindRegion(address, length) is not null;

    /// <summary>Vetoes device writes into ranges the guest's kernel protection locked; null: none.</summary>
    public IDeviceWriteGuard? DeviceWriteGuard { get; set; }

    /// <summary>Whether a device may write (DMA) the range: asked before a device-writable buffer is used.</summary>
    public bool AllowsDeviceWrite(ulong address, ulong length) => DeviceWriteGuard?.AllowsDeviceWrite(address, length) ?? true;

    /// <summary>Host pointer for a guest range lying wholly inside one region, or false.</summary>
    public bool TryTranslate(ulong address, ulong length, out nint host)
    {
        MemoryRegion? r = FindRegion(address, length);
        if (r is null)
        {
            host = 0;
            return false;
        }

        host = r.HostAddress + (nint)(address - r.GuestPhysicalAddress);
        return true;
    }

    /// <summary>A span over guest memory; throws <see cref="GuestMemoryException"/> when out of range.</summary>
    public Span<byte> GetSpan(ulong address, int length)
    {
        if (length < 0 || !TryTranslate(address, (ulong)length, out nint host))
        {
            throw new GuestMemoryException(address, (ulong)Math.Max(length, 0));
        }

        return new Span<byte>((void*)host, length);
    }

    public bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        if (length < 0 || !TryTranslate(address, (ulong)length, out nint host))
        {
            span = default;
            return false;
        }

        span = new Span<byte>((void*)host, length);
        return true;
    }

    public void Read(ulong address, Span<byte> destination) => GetSpan(address, destination.Length).CopyTo(destination);

    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        source.CopyTo(GetSpan(address, source.Length));
        NotifyExternalWrite(address, (ulong)source.Length);
    }

    /// <summary>
    /// Bytes in [address, address+length) were written from outside the guest's CPUs (device
    /// DMA through a span): tells <see cref="ExternalWrites"/>. Call it after the write, before
    /// the guest is told the data is there (the used ring, the interrupt).
    /// </summary>
    public void NotifyExternalWrite(ulong address, ulong length)
    {
        if (length != 0)
        {
            DirtyLog?.Mark(address, length);
            ExternalWrites?.OnExternalWrite(address, length);
        }
    }

    public T Read<T>(ulong address)
        where T : unmanaged
    {
        return MemoryMarshal.Read<T>(GetSpan(address, Unsafe.SizeOf<T>()));
    }

    public void Write<T>(ulong address, T value)
        where T : unmanaged
    {
        MemoryMarshal.Write(GetSpan(address, Unsafe.SizeOf<T>()), in value);
        NotifyExternalWrite(address, (ulong)Unsafe.SizeOf<T>());
    }

    public void Fill(ulong address, int length, byte value)
    {
        GetSpan(address, length).Fill(value);
        NotifyExternalWrite(address, (ulong)length);
    }

    /// <summary>
    /// Gives the backing of whole guest pages back to the host (virtio-balloon inflate): the
    /// memfd pages are freed and later guest reads see zeros. Returns false, touching nothing,
    /// when the range is not page-aligned, not inside one writable region, or cannot be freed.
    /// </summary>
    public bool TryDiscard(ulong address, ulong length)
    {
        if (length == 0 || ((address | length) & (MemoryRegion.PageSize - 1)) != 0)
        {
            return false;
        }

        MemoryRegion? r = FindRegion(address, length);
        if (r is null || r.ReadOnly)
        {
            return false;
        }

        nint host = r.HostAddress + (nint)(address - r.GuestPhysicalAddress);

        // MADV_REMOVE punches a hole in the shared memfd; MADV_DONTNEED alone would only drop
        // this process's page-table entries and keep the pages in the memfd.
        if (LibC.Madvise(host, (nuint)length, LibC.MADV_REMOVE) != 0)
        {
            return false;
        }

        NotifyExternalWrite(address, length); // the pages now read as zeros
        return true;
    }

    public void Dispose()
    {
        foreach (MemoryRegion r in _regions)
        {
            r.Dispose();
        }

        _regions = [];
        _lastHit = null;
    }
}
