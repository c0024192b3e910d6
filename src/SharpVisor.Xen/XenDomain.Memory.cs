namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int MemIncreaseReservation = 0;
    private const int MemDecreaseReservation = 1;
    private const int MemMaximumRamPage = 2;
    private const int MemCurrentReservation = 3;
    private const int MemMaximumReservation = 4;
    private const int MemPopulatePhysmap = 6;
    private const int MemAddToPhysmap = 7;
    private const int MemMemoryMap = 9;
    private const int MemMachineMemoryMap = 10;

    private const uint MapSpaceSharedInfo = 0;
    private const uint MapSpaceGrantTable = 1;

    /// <summary>MEMOP_CMD_MASK: the command's bits of memory_op's first argument (the rest is a continuation).</summary>
    private const ulong MemCommandMask = 0x3F;


    private long MemoryOp(HypercallFrame frame)
    {
        int command = (int)(frame.Argument(0) & MemCommandMask);
        ulong arg = frame.Argument(1);
        switch (command)
        {
            case MemAddToPhysmap:
                return AddToPhysmap(frame, arg);

            case MemMemoryMap:
                return MemoryMap(frame, arg);

            case MemMachineMemoryMap:
                return -XenErrno.EPERM;

            case MemCurrentReservation:
                CheckSelf(frame.Read<ushort>(arg));
                return CurrentReservationPages;

            case MemMaximumReservation:
                CheckSelf(frame.Read<ushort>(arg));
                return (long)(Memory.RamSize >> 12);

            case MemMaximumRamPage:
                return (long)(Memory.Regions.Max(r => r.GuestPhysicalAddress + r.Size) >> 12) - 1;

            case MemDecreaseReservation:
            case MemPopulatePhysmap:
            case MemIncreaseReservation:
                return Reservation(frame, command, arg);

            default:
                return Unknown(frame, "memory_op command", command);
        }
    }

    /// <summary>XENMEM_add_to_physmap: the shared_info page and grant-table frames appear at a guest frame.</summary>
    private long AddToPhysmap(HypercallFrame frame, ulong arg)
    {
        // struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space; xen_ulong_t idx; xen_pfn_t gpfn; }
        if (_pvTables is not null)
        {
            // Xen's xatp_permission_check: a PV domain is not translated (and shared_info placed on one
            // of its page tables would have the hypervisor write into a validated table).
            throw new XenException(XenErrno.EACCES, "add_to_physmap in a PV domain, which is not translated");
        }

        CheckSelf(frame.Read<ushort>(arg));
        if (_pvTables is not null)
        {
            // Xen: only a translated guest has a physmap; a PV domain's frames are machine frames.
            throw new XenException(XenErrno.EACCES, "add_to_physmap from a PV domain");
        }

        uint space = frame.Read<uint>(arg + 4);
        ulong index = frame.Read<ulong>(arg + 8);
        ulong gpfn = frame.Read<ulong>(arg + 16);
        switch (space)
        {
            case MapSpaceSharedInfo:
                if (index != 0)
                {
                    throw new XenException(XenErrno.EINVAL, $"shared_info has one frame, not {index}");
                }

                MapSharedInfo(frame.RamFrame(gpfn));
                return 0;

            case MapSpaceGrantTable:
                MapGrantFrame(index, gpfn);
                return 0;

            default:
                throw new XenException(XenErrno.EINVAL, $"map space {space} is not supported");
        }
    }

    /// <summary>
    /// Puts shared_info at <paramref name="address"/> (guest RAM stands in for Xen's page): cleared,
    /// then the wall clock and every vCPU's time info written. Events pending in an old copy are lost,
    /// as the guest only moves it before it binds any.
    /// </summary>
    private void MapSharedInfo(ulong address)
    {
        lock (_lock)
        {
            Memory.Fill(address, 4096, 0);
            Volatile.Write(ref _sharedInfo, address);
        }

        WriteWallClock(address);
        foreach (XenVcpu vcpu in _vcpus)
        {
            WriteTimeInfo(vcpu);
        }

        AssistSharedInfo(address);
        Counters.Increment("shared-info-maps");
    }

    private long MemoryMap(HypercallFrame frame, ulong arg)
    {
        // struct xen_memory_map { unsigned int nr_entries; XEN_GUEST_HANDLE(void) buffer; }
        uint capacity = frame.Read<uint>(arg);
        ulong buffer = frame.Read<ulong>(arg + 8);
        IReadOnlyList<XenMemoryMapEntry> map = _options.MemoryMap;
        if (capacity < map.Count)
        {
            throw new XenException(XenErrno.EINVAL, $"room for {capacity} entries, the map has {map.Count}");
        }

        var bytes = new byte[map.Count * 20];
        for (int i = 0; i < map.Count; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 20), map[i].Address);
            BitConverter.TryWriteBytes(bytes.AsSpan((i * 20) + 8), map[i].Size);
            BitConverter.TryWriteBytes(bytes.AsSpan((i * 20) + 16), map[i].Type);
        }

        frame.WriteBytes(buffer, bytes);
        frame.Write(arg, (uint)map.Count);
        return 0;
    }
}
