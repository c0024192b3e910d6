using SharpVisor.Memory;

namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int GnttabSetupTable = 2;
    private const int GnttabQuerySize = 6;
    private const int GnttabSetVersion = 8;
    private const int GnttabGetVersion = 10;

    /// <summary>Grant-table frames a domain may have (Xen's default max_grant_frames is 64).</summary>
    public const int MaxGrantFrames = 64;

    private readonly ulong[] _grantFrames = new ulong[MaxGrantFrames];
    private int _grantFrameCount;
    private ulong[]? _pvGrantFrames;

    /// <summary>A PV domain's grant-table frames (machine frames the builder set aside and shared with it), before the vCPUs run.</summary>
    public void AttachPvGrantFrames(IReadOnlyList<ulong> machineFrames)
    {
        ArgumentNullException.ThrowIfNull(machineFrames);
        if (machineFrames.Count != MaxGrantFrames)
        {
            throw new ArgumentException($"{machineFrames.Count} grant frames; a domain has {MaxGrantFrames}", nameof(machineFrames));
        }

        _pvGrantFrames = [.. machineFrames];
    }

    /// <summary>The guest-physical address of grant-table frame <paramref name="index"/>, or 0 while it is not mapped.</summary>
    public ulong GetGrantFrame(int index)
    {
        lock (_lock)
        {
            return index >= 0 && index < _grantFrameCount ? _grantFrames[index] : 0;
        }
    }

    private long GrantTableOp(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        ulong arg = frame.Argument(1);
        uint count = (uint)frame.Argument(2);
        if (command == GnttabCopy)
        {
            return GrantCopy(frame, arg, count);
        }

        if (command is GnttabMapGrantRef or GnttabUnmapGrantRef)
        {
            return GrantMapOps(frame, command, arg, count);
        }

        if (count != 1)
        {
            throw new XenException(XenErrno.EINVAL, $"grant_table_op count {count}: one operation at a time");
        }

        switch (command)
        {
            case GnttabQuerySize:
            {
                // struct gnttab_query_size { domid_t dom; uint32_t nr_frames; uint32_t max_nr_frames; int16_t status; }
                CheckSelf(frame.Read<ushort>(arg));
                int frames;
                lock (_lock)
                {
                    frames = _grantFrameCount;
                }

                frame.Write(arg + 4, (uint)frames);
                frame.Write(arg + 8, (uint)MaxGrantFrames);
                frame.Write(arg + 12, (short)0);
                return 0;
            }

            case GnttabSetVersion:
            {
                uint version = frame.Read<uint>(arg);
                frame.Write(arg, 1u);
                return version == 1 ? 0 : -XenErrno.EINVAL;   // v2 is not offered; the answer says 1
            }

            case GnttabGetVersion:
                CheckSelf(frame.Read<ushort>(arg));
                frame.Write(arg + 4, 1u);
                return 0;

            case GnttabSetupTable:
                return SetupTable(frame, arg);

            default:
                return Unknown(frame, "grant_table_op command", command);
        }
    }

    /// <summary>
    /// setup_table for a translated guest, as Xen answers it: the frames of the table where the
    /// guest mapped them (add_to_physmap), INVALID_GFN for those not mapped yet.
    /// struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status; XEN_GUEST_HANDLE(xen_pfn_t) frame_list; }
    /// </summary>
    private long SetupTable(HypercallFrame frame, ulong arg)
    {
        const short GeneralError = -1;
        CheckSelf(frame.Read<ushort>(arg));
        uint frames = frame.Read<uint>(arg + 4);
        ulong list = frame.Read<ulong>(arg + 16);
        if (frames > MaxGrantFrames)
        {
            frame.Write(arg + 8, GeneralError);
            return 0;
        }

        if (_pvGrantFrames is not null)
        {
            // A PV domain: the table's frames are the hypervisor's, shared with it; it maps them by machine frame.
            lock (_lock)
            {
                for (int i = _grantFrameCount; i < (int)frames; i++)
                {
                    _grantFrames[i] = _pvGrantFrames[i] << 12;
                }

                _grantFrameCount = Math.Max(_grantFrameCount, (int)frames);
            }

            for (int i = 0; i < (int)frames; i++)
            {
                frame.Write(list + ((ulong)i * 8), _pvGrantFrames[i]);
            }

            frame.Write(arg + 8, (short)0);
            return 0;
        }

        for (int i = 0; i < (int)frames; i++)
        {
            ulong address = GetGrantFrame(i);
            frame.Write(list + ((ulong)i * 8), address != 0 ? address >> 12 : ulong.MaxValue);
        }

        frame.Write(arg + 8, (short)0);
        return 0;
    }

    /// <summary>
    /// Where a grant frame may appear: a RAM frame of the domain, or — as Linux's PVH grant table
    /// asks, from unpopulated address space above its RAM — a frame outside RAM, below the 40-bit
    /// limit and outside the MMIO hole — or, in an HVM domain, inside the platform device's BAR —
    /// which gets a page of host memory of its own.
    /// </summary>
    private ulong GrantFrameAddress(ulong gpfn)
    {
        if (gpfn < 1UL << 28 && Memory.FindRegion(gpfn << 12, 4096) is { IsMapTarget: false })
        {
            return gpfn << 12;
        }

        ulong address = gpfn << 12;
        bool platform = gpfn < 1UL << 28 && InPlatformMmio(address);
        if (!platform && (gpfn >= 1UL << 28 || (address >= GuestMemory.MmioHoleStart && address < GuestMemory.HighMemoryStart) || address < GuestMemory.MmioHoleStart && address < Memory.RamSize))
        {
            throw new XenException(XenErrno.EINVAL, $"frame 0x{gpfn:x} cannot hold a grant frame");
        }

        try
        {
            Memory.AddRegion(address, 4096, name: "xen-grant-frame", countAsRam: false);
            Counters.Increment("grant-frames-outside-ram");
            return address;
        }
        catch (ArgumentException)
        {
            throw new XenException(XenErrno.EINVAL, $"frame 0x{gpfn:x} overlaps guest memory");
        }
    }

    /// <summary>add_to_physmap(grant_table): frame <paramref name="index"/> of the table appears at <paramref name="gpfn"/>.</summary>
    private void MapGrantFrame(ulong index, ulong gpfn)
    {
        if (index >= MaxGrantFrames)
        {
            throw new XenException(XenErrno.EINVAL, $"grant frame {index} is beyond {MaxGrantFrames}");
        }

        ulong address = GrantFrameAddress(gpfn);
        lock (_lock)
        {
            if ((int)index > _grantFrameCount)
            {
                throw new XenException(XenErrno.EINVAL, $"grant frame {index} skips frame {_grantFrameCount}");
            }

            Memory.Fill(address, 4096, 0);
            _grantFrames[index] = address;
            _grantFrameCount = Math.Max(_grantFrameCount, (int)index + 1);
        }
    }
}
