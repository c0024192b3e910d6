namespace SharpVisor.Xen;

/// <summary>
/// How many maps hold each grant entry of one domain (Xen's pin counts): every
/// <see cref="GrantTable"/> of the domain — its back ends', its own, the one serving other
/// domains — shares it, so the last unmap, not the first, clears GTF_reading/GTF_writing.
/// Lock the instance around its use.
/// </summary>
public sealed class GrantPins
{
    private readonly Dictionary<uint, (int Readers, int Writers)> _pins = new();

    /// <summary>Entries with at least one map.</summary>
    public int Count => _pins.Count;

    internal void Add(uint reference, bool write)
    {
        _pins.TryGetValue(reference, out (int Readers, int Writers) pin);
        _pins[reference] = (pin.Readers + 1, pin.Writers + (write ? 1 : 0));
    }

    /// <summary>False for a map that is not there (nothing to release).</summary>
    internal bool Remove(uint reference, bool write)
    {
        if (!_pins.TryGetValue(reference, out (int Readers, int Writers) pin) || pin.Readers == 0 || (write && pin.Writers == 0))
        {
            return false;
        }

        pin = (pin.Readers - 1, pin.Writers - (write ? 1 : 0));
        if (pin.Readers == 0)
        {
            _pins.Remove(reference);
        }
        else
        {
            _pins[reference] = pin;
        }

        return true;
    }

    /// <summary>The GTF_reading/GTF_writing bits the entry's maps need.</summary>
    internal ushort InUseFlags(uint reference) =>
        _pins.TryGetValue(reference, out (int Readers, int Writers) pin)
            ? (ushort)((pin.Readers > 0 ? GrantTable.Reading : 0) | (pin.Writers > 0 ? GrantTable.Writing : 0))
            : (ushort)0;
}
