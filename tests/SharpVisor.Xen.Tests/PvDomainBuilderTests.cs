using System.Text;
using SharpVisor.Boot;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>The PV domain builder on the default guest kernel: the ELF notes, start_info, and what the bootstrap tables map.</summary>
public sealed class PvDomainBuilderTests : IDisposable
{
    private const ulong MemorySize = 256UL << 20;
    private readonly GuestMemory _memory = GuestMemory.CreateRam(MemorySize);

    public void Dispose() => _memory.Dispose();

    private static string KernelPath => Path.Combine(
        Environment.GetEnvironmentVariable("SHARPVISOR_CACHE") is { Length: > 0 } cache ? cache : "/var/cache/sharpvisor", "guest", "current", "vmlinuz");

    [Fact]
    public void TheDefaultKernel_IsLaidOutAsXenDoes()
    {
        if (!File.Exists(KernelPath))
        {
            Assert.Fail($"NEEDS THE DEFAULT GUEST KERNEL: {KernelPath} (scripts/build-guest.sh)");
        }

        XenPvImage image = XenPvImage.Load(KernelPath);
        Assert.Equal(0xFFFF_FFFF_8000_0000UL, image.VirtBase);
        Assert.Null(image.HypercallPage);                       // 6.1.192 makes hypercalls with syscall
        Assert.InRange(image.Entry, 0xFFFF_FFFF_8100_0000UL, 0xFFFF_FFFF_C000_0000UL);

        byte[] initrd = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();
        var counters = new ExitCounters();
        PvDomainLayout layout = PvDomainBuilder.Build(_memory, new PvBuildRequest
        {
            Segments = [.. image.Elf.LoadSegments.Select(s => new PvKernelSegment(s.PhysicalAddress - image.PaddrOffset, image.Vmlinux.AsMemory((int)s.Offset, (int)s.FileSize), s.MemorySize))],
            Entry = image.Entry,
            VirtBase = image.VirtBase,
            P2mBase = image.P2mBase,
            Initrd = initrd,
            CommandLine = "console=hvc0 earlyprintk=xen",
        }, counters);

        // start_info, read through the guest's own mapping.
        byte[] info = ReadVirtual(layout.L4Frame, layout.StartInfo, PvDomainBuilder.StartInfoSize);
        Assert.Equal("xen-3.0-x86_64", Encoding.ASCII.GetString(info, 0, 14));
        Assert.Equal((ulong)layout.PageCount, BitConverter.ToUInt64(info, 32));
        Assert.Equal(layout.SharedInfoFrame << 12, BitConverter.ToUInt64(info, 40));
        Assert.Equal(layout.StoreFrame, BitConverter.ToUInt64(info, 56));
        Assert.Equal(layout.ConsoleFrame, BitConverter.ToUInt64(info, 72));
        ulong ptBase = BitConverter.ToUInt64(info, 88);
        ulong mfnList = BitConverter.ToUInt64(info, 104);

        // The P2M list is where the kernel's INIT_P2M note asks (512 GiB, outside the kernel mapping, which
        // Linux cleans up as on Xen); its pages follow the stack page (first_p2m_pfn, nr_p2m_frames).
        Assert.Equal(0x80_0000_0000UL, image.P2mBase);
        Assert.Equal(0x80_0000_0000UL, mfnList);
        ulong firstP2mPfn = BitConverter.ToUInt64(info, 1152);
        Assert.Equal(((ulong)layout.PageCount * 8 + 4095) / 4096, BitConverter.ToUInt64(info, 1160));
        Assert.Equal(((layout.StackPointer - image.VirtBase) >> 12), firstP2mPfn);
        Assert.Equal(layout.Tables.PhysToMachine.ToMachine(firstP2mPfn), Translate(layout.L4Frame, mfnList) >> 12);
        Assert.Equal(layout.L4Frame, Translate(layout.L4Frame, ptBase) >> 12);
        Assert.Equal((ulong)initrd.Length, BitConverter.ToUInt64(info, 120));
        Assert.Equal(initrd, ReadVirtual(layout.L4Frame, BitConverter.ToUInt64(info, 112), initrd.Length));
        Assert.StartsWith("console=hvc0 earlyprintk=xen\0", Encoding.ASCII.GetString(info, 128, 40), StringComparison.Ordinal);

        // The kernel's entry code is where the ELF says, through a P2M that is not the identity.
        ElfProgramHeader text = image.Elf.LoadSegments.First(s => image.Entry >= image.VirtBase + s.PhysicalAddress && image.Entry < image.VirtBase + s.PhysicalAddress + s.FileSize);
        ulong fileOffset = text.Offset + (image.Entry - image.VirtBase - text.PhysicalAddress);
        Assert.Equal(image.Vmlinux.AsSpan((int)fileOffset, 64).ToArray(), ReadVirtual(layout.L4Frame, image.Entry, 64));
        PvPhysToMachine p2m = layout.Tables.PhysToMachine;
        Assert.NotEqual((image.Entry - image.VirtBase) >> 12, Translate(layout.L4Frame, image.Entry) >> 12);

        // The P2M list in the guest and the M2P at Xen's address agree with the hypervisor's.
        byte[] list = ReadVirtual(layout.L4Frame, mfnList, layout.PageCount * 8);
        for (int pfn = 0; pfn < layout.PageCount; pfn += 997)
        {
            ulong mfn = BitConverter.ToUInt64(list, pfn * 8);
            Assert.Equal(p2m.ToMachine((ulong)pfn), mfn);
            Assert.Equal((ulong)pfn, BitConverter.ToUInt64(ReadVirtual(layout.L4Frame, PvDomainBuilder.MachToPhysStart + (mfn * 8), 8)));
        }

        // The L4 is pinned; every page-table frame is mapped read-only, everything else writable, all user (CPL 3 kernel).
        PvPageFrame l4 = layout.Tables.Frame(layout.L4Frame);
        Assert.True(l4.Pinned);
        Assert.Equal(PvPageType.L4, l4.Type);
        ulong tables = BitConverter.ToUInt64(info, 96);
        for (ulong i = 0; i < tables; i++)
        {
            ulong entry = LeafEntry(layout.L4Frame, ptBase + (i * 4096));
            Assert.Equal(0UL, entry & PvPte.Writable);
            Assert.NotEqual(PvPageType.Writable, layout.Tables.Frame(PvPte.Frame(entry)).Type);
        }

        Assert.NotEqual(0UL, LeafEntry(layout.L4Frame, layout.StackPointer - 8) & PvPte.Writable);
        Assert.NotEqual(0UL, LeafEntry(layout.L4Frame, image.Entry) & PvPte.User);
        Assert.Equal(1, counters["pv-validated-l4"]);
        Assert.Equal(0, counters["pv-refused"]);
        // Each vCPU's GDT (Xen's flat descriptors in page 14) is mapped in Xen's range, supervisor-only.
        ulong gdtPage = PvCpu.GdtBase(0) + (14 * 4096);
        ulong table = layout.L4Frame;
        ulong gdtEntry = 0;
        for (int level = 4; level >= 1; level--)
        {
            gdtEntry = _memory.Read<ulong>((table << 12) + (((gdtPage >> (12 + (9 * (level - 1)))) & 511) * 8));
            Assert.True((gdtEntry & PvPte.Present) != 0, $"the GDT is not mapped at level {level}");
            table = PvPte.Frame(gdtEntry);
        }

        Assert.Equal(0UL, gdtEntry & PvPte.User);
        Assert.Equal(layout.GdtFrames[0] + 14, PvPte.Frame(gdtEntry));
        Assert.Equal(0UL, layout.MappedEnd % (4UL << 20));
        Assert.True(layout.MappedEnd - (layout.StackPointer) >= 512 * 1024);
    }

    private byte[] ReadVirtual(ulong l4, ulong address, int length)
    {
        var result = new byte[length];
        for (int done = 0; done < length;)
        {
            ulong va = address + (ulong)done;
            int chunk = (int)Math.Min((ulong)(length - done), 4096 - (va & 0xFFF));
            _memory.Read(Translate(l4, va), result.AsSpan(done, chunk));
            done += chunk;
        }

        return result;
    }

    private ulong Translate(ulong l4, ulong address) => (LeafEntry(l4, address) & PvPte.FrameMask) | (address & 0xFFF);

    private ulong LeafEntry(ulong l4, ulong address)
    {
        ulong table = l4;
        ulong entry = 0;
        for (int level = 4; level >= 1; level--)
        {
            entry = _memory.Read<ulong>((table << 12) + (((address >> (12 + (9 * (level - 1)))) & 511) * 8));
            Assert.True((entry & PvPte.Present) != 0, $"0x{address:x} is not mapped at level {level}");
            Assert.True((entry & PvPte.User) != 0, $"0x{address:x} is not user-accessible at level {level}");
            table = PvPte.Frame(entry);
        }

        return entry;
    }
}
