namespace SharpVisor.Machine;

/// <summary>
/// Address-range dispatch shared by the port-I/O and MMIO buses. Registration happens
/// while the machine is built; lookups afterwards are lock-free reads of an immutable array.
/// </summary>
public abstract class IoBus<TDevice>
    where TDevice : class
{
    private volatile Entry[] _entries = Array.Empty<Entry>();
    private readonly object _registrationLock = new();

    public readonly record struct Entry(ulong Base, ulong Size, TDevice Device, string Name);

    public IReadOnlyList<Entry> Entries => _entries;

    protected void RegisterRange(ulong start, ulong size, TDevice device, string name)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (size == 0 || start + size < start)
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"bad range 0x{start:x}+0x{size:x} for {name}");
        }

        lock (_registrationLock)
        {
            foreach (Entry e in _entries)
            {
                if (start < e.Base + e.Size && e.Base < start + size)
                {
                    throw new InvalidOperationException($"{name} at 0x{start:x}+0x{size:x} overlaps {e.Name} at 0x{e.Base:x}+0x{e.Size:x}");
                }
            }

            var entries = new Entry[_entries.Length + 1];
            _entries.CopyTo(entries, 0);
            entries[^1] = new Entry(start, size, device, name);
            Array.Sort(entries, (a, b) => a.Base.CompareTo(b.Base));
            _entries = entries;
        }
    }

    public void Unregister(TDevice device)
    {
        lock (_registrationLock)
        {
            _entries = _entries.Where(e => !ReferenceEquals(e.Device, device)).ToArray();
        }
    }

    /// <summary>Finds the device whose range holds all of [address, address+length).</summary>
    protected bool TryFind(ulong address, int length, out Entry entry, out ulong offset)
    {
        Entry[] entries = _entries;
        int lo = 0;
        int hi = entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            Entry e = entries[mid];
            if (address < e.Base)
            {
                hi = mid - 1;
            }
            else if (address - e.Base >= e.Size)
            {
                lo = mid + 1;
            }
            else
            {
                offset = address - e.Base;
                if ((ulong)length > e.Size - offset)
                {
                    break;
                }

                entry = e;
                return true;
            }
        }

        entry = default;
        offset = 0;
        return false;
    }
}
