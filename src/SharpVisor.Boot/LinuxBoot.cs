using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// What bzImage and vmlinux boots share once the kernel is in place: the command line, the
/// initrd, boot_params, the identity page tables, the GDT and the 64-bit entry state.
/// </summary>
internal static class LinuxBoot
{
    /// <summary>__START_KERNEL_map: where x86-64 Linux maps its image (virtual = physical + this).</summary>
    public const ulong StartKernelMap = 0xFFFF_FFFF_8000_0000;

    public static BootResult Finish(
        GuestMemory memory,
        BootRequest request,
        MemoryPlan plan,
        BootParams zeroPage,
        ulong entry,
        long commandLineLimit,
        ulong initrdAddressMax,
        KernelFormat format,
        string description)
    {
        string kernelFile = request.KernelPath;
        if (request.Modules.Count > 0)
        {
            throw new BootImageException(kernelFile, "modules are for Multiboot kernels; a Linux kernel takes an initrd");
        }

        byte[] commandLine = BootCommandLine.Encode(kernelFile, request.CommandLine, commandLineLimit);
        memory.Write(BootLayout.CommandLineAddress, commandLine);

        ulong initrdAddress = 0, initrdSize = 0;
        var initrds = new List<string>();
        if (request.InitrdPath is { } initrd)
        {
            initrds.Add(initrd);
        }

        initrds.AddRange(request.ExtraInitrdPaths);
        if (initrds.Count > 0)
        {
            (initrdAddress, initrdSize) = LoadInitrd(memory, plan, initrds.ToArray(), initrdAddressMax);
        }

        zeroPage.SetLoaderFields(BootLayout.CommandLineAddress, initrdAddress, initrdSize, plan.Map);
        memory.Write(BootLayout.ZeroPageAddress, zeroPage.Bytes);
        IdentityPageTables.Write(memory);
        BootGdt.WriteLongMode(memory);

        VcpuState state = BootCpuState.LongMode(entry, BootLayout.ZeroPageAddress);
        var placements = new List<BootPlacement>(plan.Placements)
        {
            new("GDT", BootLayout.GdtAddress, BootLayout.GdtSize),
            new("boot_params", BootLayout.ZeroPageAddress, BootParams.Size),
            new("page tables", BootLayout.Pml4Address, (2UL + BootLayout.PageDirectoryCount) * 0x1000),
            new("command line", BootLayout.CommandLineAddress, (ulong)commandLine.Length),
        };
        placements.Sort((a, b) => a.Address.CompareTo(b.Address));
        return new BootResult(format, description, state, placements, plan.Map);
    }

    /// <summary>
    /// Puts the initrd as high as possible below min(initrd_addr_max + 1, top of low RAM),
    /// page aligned, clear of the kernel's init_size span; Linux finds it through boot_params.
    /// Several files are laid end to end, each padded with zeros to a 4-byte boundary (Linux
    /// skips zero padding between archives, and wants every cpio header 4-byte aligned).
    /// </summary>
    internal static (ulong Address, ulong Size) LoadInitrd(GuestMemory memory, MemoryPlan plan, string[] paths, ulong initrdAddressMax)
    {
        var offsets = new ulong[paths.Length];
        var lengths = new ulong[paths.Length];
        ulong size = 0;
        for (int i = 0; i < paths.Length; i++)
        {
            offsets[i] = (size + 3) & ~3UL;
            lengths[i] = (ulong)BootFile.GetLength(paths[i], "initrd");
            size = offsets[i] + lengths[i];
        }

        if (size > (ulong)BootFile.MaxSize)
        {
            throw new BootImageException(paths[0], $"the initrds together are too large ({size >> 20} MiB)");
        }

        string path = paths.Length == 1 ? paths[0] : $"{paths[0]} (+{paths.Length - 1} more)";
        ulong ceiling = Math.Min(initrdAddressMax + 1, plan.Map.LowRamEnd);
        ulong reserved = (size + MemoryRegion.PageSize - 1) & ~(MemoryRegion.PageSize - 1);
        ulong? address = plan.FindHighest(reserved, MemoryRegion.PageSize, BootLayout.KernelMinimumAddress, ceiling);
        if (address is not { } at)
        {
            string kernel = string.Join(", ", plan.Placements.Select(p => $"{p.Name} at 0x{p.Address:x}-0x{p.End:x}"));
            throw new BootImageException(path, $"initrd ({BootPlacement.FormatSize(size)}) does not fit in guest RAM below 0x{ceiling:x} next to the {kernel}; give the guest more memory");
        }

        plan.Place(path, "initrd", at, reserved);
        memory.Fill(at, (int)size, 0);
        for (int i = 0; i < paths.Length; i++)
        {
            BootFile.ReadInto(paths[i], "initrd", memory.GetSpan(at + offsets[i], (int)lengths[i]));
        }

        return (at, size);
    }
}
