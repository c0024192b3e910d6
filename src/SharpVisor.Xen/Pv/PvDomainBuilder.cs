using System.Text;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// Xen's PV domain builder (tools/libs/guest/xg_dom_x86.c, xen.h "start of day" layout) over
/// SharpVisor's machine memory. The top of memory is the hypervisor's (shared_info, the M2P and
/// the tables mapping it at 0xFFFF800000000000, the PV GDTs, the grant-table frames shared with the
/// domain); the rest are the domain's frames,
/// handed out through a shuffled P2M. In pseudo-physical order from the kernel's end:
/// <list type="number">
/// <item>the kernel's segments at p_paddr, mapped from VIRT_BASE;</item>
/// <item>the initrd (start_info.mod_start/mod_len, virtual);</item>
/// <item>the P2M list here only for a kernel without XEN_ELFNOTE_INIT_P2M;</item>
/// <item>start_info, the XenStore ring, the console ring;</item>
/// <item>the bootstrap page tables (mapped read-only, the L4 pinned);</item>
/// <item>one page of stack;</item>
/// <item>with INIT_P2M, the P2M list (start_info.mfn_list = the note's address, first_p2m_pfn, nr_p2m_frames);</item>
/// </list>
/// and the whole of [VIRT_BASE, end of the stack + 512 KiB rounded to 4 MiB) mapped, as xen.h
/// promises, plus the P2M list at its INIT_P2M address.
/// </summary>
public static class PvDomainBuilder
{
    public const string StartInfoMagic = "xen-3.0-x86_64";
    public const int StartInfoSize = 1168;
    public const int CommandLineSize = 1024;

    /// <summary>Xen's HYPERVISOR_VIRT_START for 64-bit PV: the M2P is mapped read-only here.</summary>
    public const ulong MachToPhysStart = 0xFFFF_8000_0000_0000;

    /// <summary>GDT frames per vCPU: 14 for the guest's descriptors (set_gdt) and Xen's reserved page(s).</summary>
    public const int GdtFramesPerVcpu = 16;

    // start_info.flags
    private const uint SifPrivileged = 1;

    private const ulong PageSize = 4096;
    private const ulong Present = PvPte.Present;
    private const ulong Writable = PvPte.Writable;
    private const ulong User = PvPte.User;

    public static PvDomainLayout Build(GuestMemory memory, PvBuildRequest request, ExitCounters counters)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(counters);
        if (request.Segments.Count == 0 || (request.VirtBase & 0x1F_FFFF) != 0)
        {
            throw new ArgumentException("a PV kernel needs segments and a 2 MiB-aligned VIRT_BASE", nameof(request));
        }

        ulong machineFrames = RamFrames(memory);
        ulong m2pPages = ((machineFrames * 8) + PageSize - 1) / PageSize;
        ulong m2pL1s = (m2pPages + 511) / 512;
        ulong gdtL1s = (((ulong)request.VcpuCount * GdtFramesPerVcpu) + 511) / 512;
        ulong hypervisorFrames = 1 + m2pPages + 2 + m2pL1s + 1 + gdtL1s + ((ulong)request.VcpuCount * GdtFramesPerVcpu) + XenDomain.MaxGrantFrames;
        if (hypervisorFrames + 1024 > machineFrames || m2pL1s > 512)
        {
            throw new ArgumentException($"{machineFrames * 4} KiB of memory is too small (or too large) for a PV domain", nameof(memory));
        }

        // The hypervisor's frames at the top: shared_info, the M2P, its L3, L2, L1s, then the GDTs.
        ulong nextHypervisor = machineFrames - hypervisorFrames;
        // Machine frame 0 is never the domain's (nor in Xen): a base pointer of 0 means "no table".
        ulong domainFrames = nextHypervisor - 1;
        ulong sharedInfo = nextHypervisor++;
        ulong m2pFirst = nextHypervisor;
        nextHypervisor += m2pPages;
        ulong m2pL3 = nextHypervisor++;
        ulong m2pL2 = nextHypervisor++;
        ulong m2pL1First = nextHypervisor;
        nextHypervisor += m2pL1s;
        ulong gdtL2 = nextHypervisor++;
        ulong gdtL1First = nextHypervisor;
        nextHypervisor += gdtL1s;
        var gdts = new List<ulong>();
        for (int i = 0; i < request.VcpuCount; i++)
        {
            gdts.Add(nextHypervisor);
            nextHypervisor += GdtFramesPerVcpu;
        }

        // The grant table's frames: Xen's, shared with the domain (share_xen_page_with_guest), which maps them writable.
        var grantFrames = new List<ulong>();
        for (int i = 0; i < XenDomain.MaxGrantFrames; i++)
        {
            grantFrames.Add(nextHypervisor++);
        }

        var p2m = new PvPhysToMachine([.. Enumerable.Range(1, (int)domainFrames).Select(i => (ulong)i)], machineFrames, request.Seed);
        // Writable at L4 so the CPU may set bits in the supervisor-only GDT below; the M2P stays read-only at L3.
        ulong m2pEntry = (m2pL3 << 12) | Present | Writable | User | PvPte.NoExecute;
        var tables = new PvPageTables(memory, p2m, counters, m2pEntry, request.Log) { M2pAddress = m2pFirst << 12 };
        tables.AddDomainFrame(sharedInfo);
        foreach (ulong grantFrame in grantFrames)
        {
            tables.AddDomainFrame(grantFrame);
            memory.Fill(grantFrame << 12, (int)PageSize, 0);
        }
        BuildM2p(memory, p2m, m2pFirst, m2pPages, m2pL3, m2pL2, m2pL1First);
        MapGdts(memory, m2pL3, gdtL2, gdtL1First, gdts);

        var loader = new PseudoPhysicalWriter(memory, p2m);
        ulong kernelEnd = 0;
        foreach (PvKernelSegment segment in request.Segments)
        {
            loader.Write(segment.PhysicalAddress, segment.Data.Span);
            loader.Zero(segment.PhysicalAddress + (ulong)segment.Data.Length, segment.MemorySize - (ulong)segment.Data.Length);
            kernelEnd = Math.Max(kernelEnd, segment.PhysicalAddress + segment.MemorySize);
        }

        ulong next = PageAlign(kernelEnd);
        ulong initrd = next;
        loader.Write(initrd, request.Initrd.Span);
        next = PageAlign(next + (ulong)request.Initrd.Length);
        // The P2M list: inside the kernel mapping after the initrd, or (XEN_ELFNOTE_INIT_P2M) after the
        // stack page, mapped at its own address, as xg_dom_x86's alloc_p2m_list_x86_64 does.
        ulong p2mBytes = PageAlign(domainFrames * 8);
        ulong? p2mBase = request.P2mBase;
        if (p2mBase is ulong b && (b >= request.VirtBase || (b & 0xFFF) != 0 || PvPte.IsHypervisorL4Slot((int)((b >> 39) & 511))
            || PvPte.IsHypervisorL4Slot((int)(((b + p2mBytes - 1) >> 39) & 511)) || (b >> 47 != 0 && b >> 47 != 0x1FFFF)))
        {
            throw new ArgumentException($"INIT_P2M 0x{b:x} is not a place for the P2M list", nameof(request));
        }

        ulong p2mList = next;
        if (p2mBase is null)
        {
            next = PageAlign(next + p2mBytes);
        }

        ulong startInfo = next;
        ulong store = next + PageSize;
        ulong console = next + (2 * PageSize);
        next += 3 * PageSize;

        // Page tables for [VirtBase, end): their number changes the end; iterate as xg_dom_x86 does.
        ulong tablePages = 4;
        ulong mappedEnd;
        while (true)
        {
            ulong end = next + (tablePages * PageSize) + PageSize;          // tables, then the stack page
            mappedEnd = RoundUp(end + (512 * 1024), 4UL << 20);
            ulong needed = CountTables(request.VirtBase, request.VirtBase + mappedEnd)
                + (p2mBase is ulong at ? CountTables(at, at + p2mBytes) - 1 : 0);     // one L4 for both
            if (needed <= tablePages)
            {
                break;
            }

            tablePages = needed;
        }

        if (mappedEnd / PageSize > domainFrames)
        {
            throw new ArgumentException($"the kernel, initrd and boot structures need {mappedEnd >> 20} MiB; the domain has {(domainFrames * 4) >> 10} MiB", nameof(request));
        }

        ulong tablesStart = next;
        ulong stack = next + (tablePages * PageSize);
        if (p2mBase is not null)
        {
            p2mList = stack + PageSize;
            if ((p2mList + p2mBytes) / PageSize > domainFrames)
            {
                throw new ArgumentException("the P2M list does not fit after the boot structures", nameof(request));
            }
        }

        loader.Zero(tablesStart, (tablePages + 1) * PageSize);

        // The P2M list, the start_info page, empty rings.
        for (ulong pfn = 0; pfn < domainFrames; pfn++)
        {
            loader.WriteUInt64(p2mList + (pfn * 8), p2m.ToMachine(pfn));
        }

        loader.Zero(startInfo, 3 * PageSize);
        var ranges = new List<(ulong Virtual, ulong FirstPfn, ulong Pages)> { (request.VirtBase, 0, mappedEnd / PageSize) };
        if (p2mBase is ulong mapAt)
        {
            ranges.Add((mapAt, p2mList / PageSize, p2mBytes / PageSize));
        }

        ulong l4 = BuildTables(loader, p2m, ranges, tablesStart, tablePages);

        var info = new byte[StartInfoSize];
        Encoding.ASCII.GetBytes(StartInfoMagic).CopyTo(info, 0);
        Put(info, 32, domainFrames);                                    // nr_pages
        Put(info, 40, sharedInfo << 12);                                // shared_info (machine address)
        Put(info, 48, request.DomainId == 0 ? SifPrivileged : 0);       // flags
        Put(info, 56, p2m.ToMachine(store / PageSize));                 // store_mfn
        Put(info, 72, p2m.ToMachine(console / PageSize));               // console.domU.mfn
        Put(info, 88, request.VirtBase + tablesStart);                  // pt_base
        Put(info, 96, tablePages);                                      // nr_pt_frames
        Put(info, 104, p2mBase ?? request.VirtBase + p2mList);          // mfn_list
        Put(info, 112, request.Initrd.Length > 0 ? request.VirtBase + initrd : 0);
        Put(info, 120, (ulong)request.Initrd.Length);
        byte[] commandLine = Encoding.UTF8.GetBytes(request.CommandLine);
        commandLine.AsSpan(0, Math.Min(commandLine.Length, CommandLineSize - 1)).CopyTo(info.AsSpan(128));
        Put(info, 128 + CommandLineSize, p2mList / PageSize);           // first_p2m_pfn
        Put(info, 136 + CommandLineSize, p2mBytes / PageSize);          // nr_p2m_frames
        loader.Write(startInfo, info);

        // The event channels (start_info.store_evtchn / console.domU.evtchn) are filled in by the caller, who allocates them.
        PvVcpuPaging boot = new(0);
        int rc = tables.MmuextOp(boot, PvMmuextCommand.PinL4Table, l4, 0);
        if (rc != 0)
        {
            throw new InvalidOperationException($"the bootstrap page tables did not validate: {rc}");
        }

        // The pages the hypervisor and the back ends write — shared_info, the XenStore and console rings —
        // hold a Writable type reference for the domain's life, as in Xen (share_xen_page_with_guest pins
        // shared_info writable; xenstored and xenconsoled map the rings). So the guest can never make one
        // a page table or descriptor page that they would then fill with unvalidated entries.
        foreach (ulong shared in new[] { sharedInfo, p2m.ToMachine(store / PageSize), p2m.ToMachine(console / PageSize) })
        {
            if (tables.GetTypeReference(shared, PvPageType.Writable) != 0)
            {
                throw new InvalidOperationException($"machine frame 0x{shared:x} cannot be held writable");
            }
        }

        return new PvDomainLayout
        {
            Tables = tables,
            Entry = request.Entry,
            StackPointer = request.VirtBase + stack + PageSize,
            StartInfo = request.VirtBase + startInfo,
            StartInfoFrame = p2m.ToMachine(startInfo / PageSize),
            L4Frame = l4,
            SharedInfoFrame = sharedInfo,
            ConsoleFrame = p2m.ToMachine(console / PageSize),
            StoreFrame = p2m.ToMachine(store / PageSize),
            GdtFrames = gdts,
            GrantFrames = grantFrames,
            PageCount = (int)domainFrames,
            MappedEnd = request.VirtBase + mappedEnd,
        };
    }

    /// <summary>Where start_info's event-channel fields are, for the caller that binds them: (store_evtchn, console evtchn) offsets.</summary>
    public static (int Store, int Console) EventChannelOffsets => (64, 80);

    private static ulong RamFrames(GuestMemory memory)
    {
        ulong frames = 0;
        while (memory.IsValid(frames << 12, 4096))
        {
            frames++;
        }

        return frames;
    }

    /// <summary>
    /// L4 → L3 → L2 → L1s for each range (virtual start, first pfn, pages): the kernel mapping and,
    /// with INIT_P2M, the P2M list's; the table pages read-only, without NX (as xg_dom_x86 maps). Returns the L4's mfn.
    /// </summary>
    private static ulong BuildTables(PseudoPhysicalWriter loader, PvPhysToMachine p2m, IReadOnlyList<(ulong Virtual, ulong FirstPfn, ulong Pages)> ranges, ulong tablesStart, ulong tablePages)
    {
        ulong nextTable = tablesStart / PageSize;
        ulong tablesEnd = nextTable + tablePages;
        ulong l4 = nextTable++;
        var tables = new Dictionary<(int Level, ulong Prefix), ulong>();
        foreach ((ulong virtBase, ulong firstPfn, ulong pages) in ranges)
        {
            for (ulong page = 0; page < pages; page++)
            {
                ulong va = virtBase + (page * PageSize);
                ulong table = l4;
                for (int level = 4; level > 1; level--)
                {
                    int shift = 12 + (9 * (level - 1));
                    ulong prefix = va >> shift;
                    if (!tables.TryGetValue((level - 1, prefix), out ulong child))
                    {
                        child = nextTable++;
                        tables[(level - 1, prefix)] = child;
                        loader.WriteUInt64((table * PageSize) + (((va >> shift) & 511) * 8), (p2m.ToMachine(child) << 12) | Present | Writable | User);
                    }

                    table = child;
                }

                ulong pfn = firstPfn + page;
                ulong rights = pfn >= tablesStart / PageSize && pfn < tablesEnd ? Present : Present | Writable;
                loader.WriteUInt64((table * PageSize) + (((va >> 12) & 511) * 8), (p2m.ToMachine(pfn) << 12) | rights);
            }
        }

        if (nextTable > tablesEnd)
        {
            throw new InvalidOperationException("bootstrap page-table count was underestimated");
        }

        return p2m.ToMachine(l4);
    }

    /// <summary>The M2P (every machine frame's pfn or INVALID) and read-only user tables mapping it at <see cref="MachToPhysStart"/>.</summary>
    private static void BuildM2p(GuestMemory memory, PvPhysToMachine p2m, ulong first, ulong pages, ulong l3, ulong l2, ulong l1First)
    {
        for (ulong page = 0; page < pages; page++)
        {
            memory.Fill((first + page) << 12, 4096, 0xFF);      // INVALID_M2P_ENTRY beyond the last frame
        }

        for (ulong mfn = 0; mfn < p2m.MachineFrameCount; mfn++)
        {
            memory.Write((first << 12) + (mfn * 8), p2m.ToPhysical(mfn));
        }

        const ulong rights = Present | User | PvPte.NoExecute;
        memory.Fill(l3 << 12, 4096, 0);
        memory.Fill(l2 << 12, 4096, 0);
        memory.Write(l3 << 12, (l2 << 12) | rights);
        for (ulong i = 0; i < (pages + 511) / 512; i++)
        {
            ulong l1 = l1First + i;
            memory.Fill(l1 << 12, 4096, 0);
            memory.Write((l2 << 12) + (i * 8), (l1 << 12) | rights);
            for (ulong j = 0; j < 512 && (i * 512) + j < pages; j++)
            {
                memory.Write((l1 << 12) + (j * 8), ((first + (i * 512) + j) << 12) | rights);
            }
        }
    }

    /// <summary>
    /// The vCPUs' GDTs at <see cref="PvCpu.GdtVirtualBase"/> (L3 slot 1 of the M2P's L3): 16 frames each,
    /// supervisor-only, so the CPU's descriptor loads reach them and the guest's own accesses do not.
    /// </summary>
    private static void MapGdts(GuestMemory memory, ulong l3, ulong l2, ulong l1First, IReadOnlyList<ulong> gdts)
    {
        memory.Fill(l2 << 12, 4096, 0);
        memory.Write((l3 << 12) + 8, (l2 << 12) | Present | Writable | User | PvPte.NoExecute);
        ulong page = 0;
        foreach (ulong first in gdts)
        {
            for (ulong i = 0; i < GdtFramesPerVcpu; i++, page++)
            {
                ulong l1 = l1First + (page / 512);
                if (page % 512 == 0)
                {
                    memory.Fill(l1 << 12, 4096, 0);
                    memory.Write((l2 << 12) + ((page / 512) * 8), (l1 << 12) | Present | Writable | User | PvPte.NoExecute);
                }

                memory.Write((l1 << 12) + ((page % 512) * 8), ((first + i) << 12) | Present | Writable | PvPte.NoExecute);
            }
        }
    }

    /// <summary>Page tables to map [start, end): one L4, an L3 per 512 GiB, an L2 per GiB, an L1 per 2 MiB touched.</summary>
    private static ulong CountTables(ulong start, ulong end)
    {
        ulong count = 1;
        foreach (int shift in new[] { 39, 30, 21 })
        {
            count += ((end - 1) >> shift) - (start >> shift) + 1;
        }

        return count;
    }

    private static ulong PageAlign(ulong value) => RoundUp(value, PageSize);

    private static ulong RoundUp(ulong value, ulong unit) => (value + unit - 1) / unit * unit;

    private static void Put(byte[] buffer, int offset, ulong value) => BitConverter.TryWriteBytes(buffer.AsSpan(offset), value);

    /// <summary>Writes at pseudo-physical addresses, page by page through the P2M (neighbouring pfns are not neighbouring mfns).</summary>
    private sealed class PseudoPhysicalWriter(GuestMemory memory, PvPhysToMachine p2m)
    {
        public void Write(ulong address, ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                int inPage = (int)Math.Min((ulong)data.Length, PageSize - (address % PageSize));
                memory.Write(Machine(address), data[..inPage]);
                data = data[inPage..];
                address += (ulong)inPage;
            }
        }

        public void Zero(ulong address, ulong length)
        {
            while (length > 0)
            {
                int inPage = (int)Math.Min(length, PageSize - (address % PageSize));
                memory.Fill(Machine(address), inPage, 0);
                length -= (ulong)inPage;
                address += (ulong)inPage;
            }
        }

        public void WriteUInt64(ulong address, ulong value) => memory.Write(Machine(address), value);

        private ulong Machine(ulong address) => (p2m.ToMachine(address / PageSize) << 12) | (address % PageSize);
    }
}
