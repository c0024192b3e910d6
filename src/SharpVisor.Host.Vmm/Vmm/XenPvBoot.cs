using SharpVisor.Boot;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// Boots a kernel as a Xen PV domain (docs/xen-pv.md): the ELF notes read by the boot layer, the
/// start-of-day layout by the Xen layer's builder, and vCPU 0's entry state — 64-bit at CPL 3
/// with Xen's flat selectors, the pinned bootstrap L4 in CR3, RSI = start_info.
/// </summary>
public static class XenPvBoot
{
    /// <summary>Xen's flat ring-3 descriptors (the PV GDT's reserved page holds the same).</summary>
    private const ulong FlatCode64 = 0x00AF_FB00_0000_FFFFUL;
    private const ulong FlatData = 0x00CF_F300_0000_FFFFUL;

    public static (BootResult Boot, PvDomainLayout Layout) Load(GuestMemory memory, BootRequest request, int vcpuCount, ExitCounters counters, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Modules.Count > 0)
        {
            throw new BootImageException(request.KernelPath, "modules are for Multiboot kernels; a PV kernel takes an initrd");
        }

        XenPvImage image = XenPvImage.Load(request.KernelPath);
        var initrd = new MemoryStream();
        foreach (string path in (request.InitrdPath is { } first ? [first] : Array.Empty<string>()).Concat(request.ExtraInitrdPaths))
        {
            // The kernel reads an appended cpio archive only from a 4-byte boundary.
            initrd.Write(new byte[(4 - (initrd.Length % 4)) % 4]);
            initrd.Write(File.ReadAllBytes(path));
        }

        PvDomainLayout layout = PvDomainBuilder.Build(memory, new PvBuildRequest
        {
            Segments = [.. image.Elf.LoadSegments.Select(s => new PvKernelSegment(s.PhysicalAddress - image.PaddrOffset, image.Vmlinux.AsMemory((int)s.Offset, (int)s.FileSize), s.MemorySize))],
            Entry = image.Entry,
            VirtBase = image.VirtBase,
            P2mBase = image.P2mBase,
            Initrd = initrd.ToArray(),
            CommandLine = request.CommandLine ?? string.Empty,
            VcpuCount = vcpuCount,
            Log = log,
        }, counters);

        SegmentRegister none = new() { Type = 0x3, Limit = 0xFFFF, Unusable = true };
        var state = new VcpuState
        {
            Rip = layout.Entry,
            Rsp = layout.StackPointer,
            Rsi = layout.StartInfo,
            Rflags = 0x202,                                    // IF stays set; events start masked in vcpu_info
            Cs = BootGdt.ToSegment(PvCpu.FlatKernelCs, FlatCode64),
            Ss = BootGdt.ToSegment(PvCpu.FlatKernelSs, FlatData),
            Ds = none,
            Es = none,
            Fs = none,
            Gs = none,
            // No TSS the guest can reach: an IN/OUT at CPL 3 is a #GP for the PV CPU to emulate, as under Xen
            // (a bitmap in guest memory would be read at a guest-virtual address).
            Tr = new SegmentRegister { Type = 0xB, Limit = 0, Unusable = true },
            Ldt = new SegmentRegister { Type = 0x2, Limit = 0xFFFF, Unusable = true },
            Gdt = new DescriptorTable(PvCpu.GdtBase(0), 0xFFFF),
            Idt = new DescriptorTable(0, 0),
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0MonitorCoprocessor | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError
                | VcpuState.Cr0WriteProtect | VcpuState.Cr0Paging,
            Cr3 = layout.L4Frame << 12,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt,
            Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferNoExecute | VcpuState.EferSyscall,
        };

        var map = new E820Map();
        map.Add(0, (ulong)layout.PageCount * 4096, E820Type.Ram);
        string description = $"Xen PV ({image.Source}, entry 0x{image.Entry:x}, {layout.PageCount} pages, P2M shuffled)";
        return (new BootResult(KernelFormat.XenPv, description, state, [], map), layout);
    }
}
