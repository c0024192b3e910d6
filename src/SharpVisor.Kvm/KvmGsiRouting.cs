using System.Runtime.InteropServices;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm;

/// <summary>
/// The VM's GSI routing table (KVM_SET_GSI_ROUTING). KVM replaces the whole table on every
/// update, so it is kept here and committed whole: GSIs 0-23 exactly as KVM routes them after
/// KVM_CREATE_IRQCHIP (GSI n to I/O APIC pin n, and GSIs 0-15 also to their 8259 pin), then one
/// MSI route per <see cref="KvmMsiRoute"/> from GSI 24 up.
/// </summary>
internal sealed unsafe class KvmGsiRouting : IDisposable
{
    public const uint IoApicPins = 24;
    public const uint FirstMsiGsi = IoApicPins;

    private readonly KvmVirtualMachine _vm;
    private readonly uint _gsiLimit;
    private readonly object _lock = new();
    private readonly SortedDictionary<uint, (ulong Address, uint Data)> _msi = new();
    private readonly List<KvmMsiRoute> _routes = new();
    private readonly Stack<uint> _freeGsis = new();
    private uint _nextGsi = FirstMsiGsi;
    private bool _disposed;

    public KvmGsiRouting(KvmVirtualMachine vm)
    {
        _vm = vm;

        // KVM_CAP_IRQ_ROUTING answers the number of routes; MSI routes need irqfd to be worth having.
        int routes = vm.System.CheckExtension(KvmCapability.IrqRouting);
        bool irqfd = vm.System.CheckExtension(KvmCapability.Irqfd) > 0;
        _gsiLimit = irqfd && routes > (int)FirstMsiGsi ? (uint)routes : 0;
    }

    /// <summary>False when this KVM cannot route MSIs through irqfds (KVM_SIGNAL_MSI is used instead).</summary>
    public bool IsAvailable => _gsiLimit > 0;

    /// <summary>MSI routes committed to KVM now.</summary>
    public int MsiRouteCount
    {
        get
        {
            lock (_lock)
            {
                return _msi.Count;
            }
        }
    }

    public KvmMsiRoute? TryCreate()
    {
        lock (_lock)
        {
            if (_disposed || !IsAvailable)
            {
                return null;
            }

            uint gsi;
            if (_freeGsis.Count > 0)
            {
                gsi = _freeGsis.Pop();
            }
            else if (_nextGsi < _gsiLimit)
            {
                gsi = _nextGsi++;
            }
            else
            {
                return null;
            }

            var route = new KvmMsiRoute(this, _vm, gsi);
            _routes.Add(route);
            return route;
        }
    }

    /// <summary>Points <paramref name="gsi"/> at an MSI message and commits the table.</summary>
    public void SetMsi(uint gsi, ulong address, uint data)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            bool had = _msi.TryGetValue(gsi, out (ulong Address, uint Data) old);
            _msi[gsi] = (address, data);
            try
            {
                Commit();
            }
            catch
            {
                // KVM refused the message (e.g. a malformed x2APIC destination): keep the old table.
                if (had)
                {
                    _msi[gsi] = old;
                }
                else
                {
                    _msi.Remove(gsi);
                }

                throw;
            }
        }
    }

    /// <summary>Forgets <paramref name="route"/>'s GSI (its irqfd is already gone).</summary>
    public void Release(KvmMsiRoute route)
    {
        lock (_lock)
        {
            if (!_routes.Remove(route))
            {
                return;
            }

            _freeGsis.Push(route.Gsi);
            if (_msi.Remove(route.Gsi) && !_disposed)
            {
                Commit();
            }
        }
    }

    /// <summary>Closes every route's eventfd; called when the VM goes away (its irqfds go with it).</summary>
    public void Dispose()
    {
        KvmMsiRoute[] routes;
        lock (_lock)
        {
            _disposed = true;
            routes = _routes.ToArray();
        }

        foreach (KvmMsiRoute route in routes)
        {
            route.Dispose();
        }
    }

    private void Commit()
    {
        var entries = new List<KvmIrqRoutingEntry>();
        for (uint gsi = 0; gsi < IoApicPins; gsi++)
        {
            entries.Add(new KvmIrqRoutingEntry { Gsi = gsi, Type = KvmIrqRoutingEntry.TypeIrqchip, Irqchip = KvmIrqRoutingEntry.IrqchipIoapic, Pin = gsi });
            if (gsi < 16)
            {
                uint pic = gsi < 8 ? KvmIrqRoutingEntry.IrqchipPicMaster : KvmIrqRoutingEntry.IrqchipPicSlave;
                entries.Add(new KvmIrqRoutingEntry { Gsi = gsi, Type = KvmIrqRoutingEntry.TypeIrqchip, Irqchip = pic, Pin = gsi % 8 });
            }
        }

        foreach ((uint gsi, (ulong address, uint data)) in _msi)
        {
            entries.Add(new KvmIrqRoutingEntry
            {
                Gsi = gsi,
                Type = KvmIrqRoutingEntry.TypeMsi,
                MsiAddressLo = (uint)address,
                MsiAddressHi = (uint)(address >> 32),
                MsiData = data,
            });
        }

        int size = sizeof(KvmIrqRouting) + (entries.Count * sizeof(KvmIrqRoutingEntry));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)size);
        try
        {
            *(KvmIrqRouting*)buffer = new KvmIrqRouting { Nr = (uint)entries.Count };
            var table = new Span<KvmIrqRoutingEntry>(buffer + sizeof(KvmIrqRouting), entries.Count);
            for (int i = 0; i < entries.Count; i++)
            {
                table[i] = entries[i];
            }

            if (LibC.Ioctl(_vm.Fd, KvmIoctls.SetGsiRouting, buffer) < 0)
            {
                throw LinuxException.FromLastError($"KVM_SET_GSI_ROUTING ({entries.Count} routes)");
            }
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }
}
