using SharpVisor.Boot;
using SharpVisor.Devices.Pci;
using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;
using SharpVisor.Xen;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The Xen side of one domain's VMM: the hypervisor pages carved from the top of low RAM, the
/// <see cref="XenDomain"/> attached to the accelerator, and Dom0's back ends (the PV console).
/// </summary>
public sealed class XenGuest : IDisposable
{
    /// <summary>Pages the hypervisor keeps at the top of low RAM (reserved in the memory map): the console ring, the XenStore ring, two spare.</summary>
    public const int SpecialPages = 4;

    /// <summary>XenStore's name for a domain that was given none (a `sharpvisor run`).</summary>
    public const string DefaultDomainName = "sharpvisor-guest";

    private readonly List<XenBlockBackend> _blockBackends = [];
    private readonly List<XenDiskImage> _images = [];
    private readonly List<XenNetBackend> _netBackends = [];
    private readonly List<XenTapPort> _taps = [];

    private readonly Action<string>? _log;

    private XenGuest(XenDomain domain, XenConsoleBackend console, XenStore store, XenStoreConnection storeConnection, Action<string>? log)
    {
        _log = log;
        Domain = domain;
        Console = console;
        Store = store;
        StoreConnection = storeConnection;
        Grants = new GrantTable(domain);
    }

    /// <summary>blkback of each --disk, in order: xvda, xvdb, ...</summary>
    public IReadOnlyList<XenBlockBackend> BlockBackends => _blockBackends;

    /// <summary>netback of each --net, in order: the guest's eth0, eth1, ...</summary>
    public IReadOnlyList<XenNetBackend> NetBackends => _netBackends;

    /// <summary>The TAP under each of <see cref="NetBackends"/>.</summary>
    public IReadOnlyList<XenTapPort> Taps => _taps;

    /// <summary>Dom0's XenStore (this domain's tree, as the toolstack seeded it).</summary>
    public XenStore Store { get; }

    public XenStoreConnection StoreConnection { get; }

    /// <summary>The back ends' checked way into the guest's granted pages.</summary>
    public GrantTable Grants { get; }

    public XenDomain Domain { get; }

    public XenConsoleBackend Console { get; }

    /// <summary>
    /// Xen's balloon: the toolstack writes memory/target (KiB) and the guest's balloon driver gives
    /// pages back (decrease_reservation, released on the host) until it holds that much.
    /// </summary>
    public void SetMemoryTarget(long mib)
    {
        long memoryMib = (long)(Domain.Memory.RamSize >> 20);
        if (mib < 0 || mib > memoryMib)
        {
            throw new ArgumentOutOfRangeException(nameof(mib), $"memory target {mib} MiB is out of range (0-{memoryMib} MiB, the guest's memory)");
        }

        Store.Write(0, $"/local/domain/{Domain.DomainId}/memory/target", (mib * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The memory target in MiB (memory/target), or null when the node is missing or not a number.</summary>
    public long? MemoryTargetMib =>
        Store.TryReadString($"/local/domain/{Domain.DomainId}/memory/target") is { } value && long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long kib) ? kib >> 10 : null;

    /// <summary>An HVM domain's unplug ports (0x10-0x13), or null (PVH).</summary>
    public XenPlatformPorts? PlatformPorts { get; private set; }

    /// <summary>An HVM domain's Xen platform PCI device, or null (PVH).</summary>
    public XenPlatformPciDevice? PlatformDevice { get; private set; }

    /// <summary>
    /// Makes the domain an HVM one with PV drivers: the unplug ports and the platform PCI device
    /// (grant frames in its BAR). Under --xen the disks and NICs are vbds and vifs from the start,
    /// so the machine has no emulated disk or NIC for an unplug to remove; the mask is recorded.
    /// </summary>
    public void AttachPlatform(IVirtualMachine machine, PciBus pci)
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(pci);
        var ports = new XenPlatformPorts(_log);
        machine.PortIo.Register(XenPlatformPorts.BasePort, XenPlatformPorts.PortCount, ports, "xen-platform");
        var device = new XenPlatformPciDevice(Domain);
        pci.Attach(device);

        // A PCI INTx callback via names a function's pin: the GSI the bus routes it to (the _PRT's).
        Domain.AttachInterruptController(machine.Interrupts, (bus, devfn, intx) =>
            bus == 0 && pci.IntxRoutes().FirstOrDefault(r => r.Slot == devfn >> 3 && r.Pin == intx + 1) is { Gsi: var gsi and not 0 } ? gsi : null);
        PlatformPorts = ports;
        PlatformDevice = device;
    }

    /// <summary>The first of the special pages for a machine over <paramref name="memory"/>.</summary>
    public static ulong SpecialArea(GuestMemory memory)
    {
        ulong lowEnd = memory.Regions.Where(r => r.GuestPhysicalAddress < GuestMemory.MmioHoleStart).Max(r => r.End);
        return lowEnd - (SpecialPages * 4096UL);
    }

    /// <summary>Hands the accelerator's VM the Xen interface (before any vCPU exists) and opens the console back end.</summary>
    public static XenGuest Attach(IVirtualMachine machine, int vcpuCount, BootResult boot, Stream? consoleOutput, Action<string>? log, IReadOnlyList<DiskConfiguration>? disks = null, IReadOnlyList<NetworkInterfaceConfiguration>? nics = null, string? name = null, PvDomainLayout? pv = null, int? domainId = null, string? linkDirectory = null)
    {
        if (machine is not IHypervisorInterfaceHost host)
        {
            throw new ArgumentException("--xen needs an accelerator that carries a hypervisor interface (the emulator, or KVM with KVM_CAP_XEN_HVM)");
        }

        var outputLock = new object();
        void Write(ReadOnlyMemory<byte> bytes)
        {
            if (consoleOutput is null)
            {
                return;
            }

            lock (outputLock)
            {
                consoleOutput.Write(bytes.Span);
                consoleOutput.Flush();
            }
        }

        ulong special = pv is null ? SpecialArea(machine.Memory) : 0;
        if (domainId is int id && (id < 1 || id >= XenDomain.DomidSelf))
        {
            throw new ArgumentException($"domain id {id} is not a Xen guest's domid (1-{XenDomain.DomidSelf - 1})");
        }

        var domain = new XenDomain(machine.Memory, new XenDomainOptions
        {
            DomainId = (ushort)(domainId ?? 1),
            VcpuCount = vcpuCount,
            MemoryMap = boot.MemoryMap.Entries.Select(e => new XenMemoryMapEntry(e.Address, e.Size, (uint)e.Type)).ToArray(),
            ConsoleOutput = Write,
            Log = log,
        });
        host.AttachHypervisorInterface(domain);
        if (pv is null)
        {
            // HVM_PARAM_CALLBACK_IRQ may name a GSI instead of a vector.
            domain.AttachInterruptController(machine.Interrupts);
        }

        if (pv is not null)
        {
            // A PV domain: direct paging, the PV CPU, shared_info and the rings where the builder put them.
            domain.AttachPvPaging(pv.Tables);
            domain.AttachPvCpu(pv.GdtFrames);
            if (pv.Tables.MmuextOp(domain.PvPaging(0), PvMmuextCommand.NewBaseptr, pv.L4Frame, 0) != 0)
            {
                throw new InvalidOperationException("the PV bootstrap L4 is not a valid base pointer");
            }

            domain.PlacePvSharedInfo(pv.SharedInfoFrame << 12);
            domain.AttachPvGrantFrames(pv.GrantFrames);
        }

        ulong consoleRing = pv is null ? special : pv.ConsoleFrame << 12;
        ulong storeRing = pv is null ? special + 4096 : pv.StoreFrame << 12;
        var console = new XenConsoleBackend(domain, consoleRing, Write, log);
        var store = new XenStore();
        XenStoreLayout.SeedDomain(store, domain.DomainId, name ?? DefaultDomainName, machine.Memory.RamSize >> 10, vcpuCount);
        var storeConnection = new XenStoreConnection(domain, store, storeRing, log);
        if (pv is not null)
        {
            (int storeOffset, int consoleOffset) = PvDomainBuilder.EventChannelOffsets;
            machine.Memory.Write((pv.StartInfoFrame << 12) + (ulong)storeOffset, (uint)storeConnection.Port);
            machine.Memory.Write((pv.StartInfoFrame << 12) + (ulong)consoleOffset, (uint)console.Port);
        }

        var guest = new XenGuest(domain, console, store, storeConnection, log);
        try
        {
            if (linkDirectory is not null)
            {
                guest.Link = XenInterdomainLink.Start(linkDirectory, domain, guest.Grants, log);

                // This store holds the back-end directories of our vbds that driver domains serve (docs/xen.md, "Driver domains").
                var storeLink = new XenStoreLinkService(store, guest.Link, domain.DomainId);
                guest.Link.Service = storeLink;

                // The guest's own requests for other domains' trees (a Linux driver domain's blkback, a front
                // end of one) go to the VMMs that hold them (docs/xen.md, "A Linux guest as the driver domain").
                storeConnection.Remote = storeLink;
            }

            disks ??= [];
            if (disks.Count > 16)
            {
                throw new ArgumentException($"{disks.Count} disks: a Xen domain here has at most 16 (xvda..xvdp)");
            }

            var drivers = new SortedSet<ushort>();
            for (int i = 0; i < disks.Count; i++)
            {
                if (disks[i].XenBackendDomain is ushort driver)
                {
                    // xl's backend=: the toolstack's nodes only; the driver domain's blkback does the rest.
                    if (guest.Link is null)
                    {
                        throw new ArgumentException($"disk {i} names driver domain {driver}: only a domain under the daemon (--xen-link) reaches other domains");
                    }

                    if (SeedInGuestDriverDomain(guest.Link, driver, i, disks[i].Path, disks[i].ReadOnly) is { } errno)
                    {
                        if (errno != "ENOENT")
                        {
                            throw new ArgumentException($"disk {i}: driver domain {driver} refused the vbd ({errno}): a guest driver domain serves phy:/dev/xvdX, one of its own disks");
                        }

                        // A SharpVisor driver domain (no store of its own): both directories live in ours.
                        XenDriverDomainLayout.SeedVbd(store, domain.DomainId, driver, i, Path.GetFullPath(disks[i].Path), disks[i].ReadOnly);
                        drivers.Add(driver);
                        continue;
                    }

                    // A guest driver domain wrote the back end's directory into its store; ours names it.
                    XenDriverDomainLayout.SeedFrontend(store, domain.DomainId, driver, i);
                    continue;
                }

                var image = new XenDiskImage(disks[i].Path, disks[i].ReadOnly);
                guest._images.Add(image);
                var backend = new XenBlockBackend(domain, store, guest.Grants, image, i, log);
                guest._blockBackends.Add(backend);
                backend.Start();
            }

            foreach (ushort driver in drivers)
            {
                // A driver domain already running learns of us now; one started later asks every domain.
                guest.Link!.Notify(driver, XenLinkMessageType.Introduce, []);
            }

            nics ??= [];
            for (int i = 0; i < nics.Count; i++)
            {
                var tap = new XenTapPort(nics[i].TapName);
                guest._taps.Add(tap);
                MacAddress mac = nics[i].Mac ?? MacAddress.Random();
                var backend = new XenNetBackend(domain, store, guest.Grants, tap, mac.ToBytes(), i, log);
                guest._netBackends.Add(backend);
                backend.StartReceiving();
            }
        }
        catch
        {
            guest.Dispose();
            throw;
        }

        return guest;
    }

    /// <summary>
    /// Asks driver domain <paramref name="driver"/>'s VMM to write the vbd's back-end directory into
    /// its store (a guest driver domain, whose own blkback serves it): null when it did, else the errno
    /// (ENOENT: a SharpVisor driver domain, which holds no store, or nobody there).
    /// </summary>
    private static string? SeedInGuestDriverDomain(XenInterdomainLink link, ushort driver, int index, string target, bool readOnly)
    {
        byte[] request = [(byte)index, readOnly ? (byte)1 : (byte)0, .. System.Text.Encoding.UTF8.GetBytes(target)];
        byte[]? reply = link.Request(driver, XenLinkMessageType.XenStoreSeedVbd, request);
        if (reply is null or { Length: 0 })
        {
            return "ENOENT";
        }

        return reply[0] == 0 ? null : System.Text.Encoding.ASCII.GetString(reply, 1, Math.Min(reply.Length - 1, 16));
    }

    /// <summary>The event channels to other domains, for the toolstack (<c>sharpvisor xen-channels</c>).</summary>
    public IReadOnlyList<Domains.XenChannel> InterdomainChannels() =>
        Domain.InterdomainPorts().Select(p => new Domains.XenChannel
        {
            Port = p.Port,
            State = p.RemotePort != 0 ? "interdomain" : "unbound",
            RemoteDomain = p.RemoteDomain,
            RemotePort = p.RemotePort,
        }).ToArray();

    /// <summary>The way to the daemon's other domains, or null (a domain alone).</summary>
    public XenInterdomainLink? Link { get; private set; }

    public void Dispose()
    {
        Link?.Dispose();
        foreach (XenBlockBackend backend in _blockBackends)
        {
            backend.Dispose();
        }

        foreach (XenDiskImage image in _images)
        {
            image.Dispose();
        }

        foreach (XenNetBackend backend in _netBackends)
        {
            backend.Dispose();
        }

        foreach (XenTapPort tap in _taps)
        {
            tap.Dispose();
        }

        Domain.Dispose();
    }
}
