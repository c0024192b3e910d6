using System.Buffers.Binary;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// Boots Linux the PVH way (xen/include/public/arch-x86/hvm/start_info.h): the vmlinux's
/// segments at their physical addresses, then vCPU 0 in 32-bit protected mode with paging off at
/// XEN_ELFNOTE_PHYS32_ENTRY and EBX pointing at hvm_start_info (version 1: command line, the
/// initrd as module 0, the memory map, the RSDP).
/// </summary>
public static class PvhBoot
{
    public const uint StartInfoMagic = 0x336E_C578;
    public const ulong StartInfoAddress = BootLayout.ZeroPageAddress;
    public const int StartInfoSize = 56;
    public const ulong ModuleListAddress = StartInfoAddress + 0x40;
    public const ulong MemoryMapAddress = StartInfoAddress + 0x100;
    public const int MemoryMapEntrySize = 24;

    private const uint InitrdAddressMax = 0x7FFF_FFFF;

    public static BootResult Load(GuestMemory memory, BootRequest request, ulong rsdpAddress = 0, IReadOnlyList<(ulong Address, ulong Size)>? reserved = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Modules.Count > 0)
        {
            throw new BootImageException(request.KernelPath, "modules are for Multiboot kernels; a PVH kernel takes an initrd");
        }

        PvhImage image = PvhImage.Load(request.KernelPath);
        E820Map map = E820Map.FromGuestMemory(memory);
        foreach ((ulong address, ulong size) in reserved ?? [])
        {
            map.Reserve(address, size);
        }

        var plan = new MemoryPlan(map);
        ElfLoader.LoadSegments(memory, plan, request.KernelPath, image.Vmlinux, image.Elf);

        byte[] commandLine = BootCommandLine.Encode(request.KernelPath, request.CommandLine, VmlinuxImage.CommandLineLimit);
        memory.Write(BootLayout.CommandLineAddress, commandLine);

        var initrds = new List<string>();
        if (request.InitrdPath is { } initrd)
        {
            initrds.Add(initrd);
        }

        initrds.AddRange(request.ExtraInitrdPaths);
        ulong initrdAddress = 0, initrdSize = 0;
        if (initrds.Count > 0)
        {
            (initrdAddress, initrdSize) = LinuxBoot.LoadInitrd(memory, plan, initrds.ToArray(), InitrdAddressMax);
        }

        int entries = map.Entries.Count;
        var startInfo = new byte[(int)(MemoryMapAddress - StartInfoAddress) + (entries * MemoryMapEntrySize)];
        Span<byte> info = startInfo;
        BinaryPrimitives.WriteUInt32LittleEndian(info, StartInfoMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(info[4..], 1);                                   // version
        BinaryPrimitives.WriteUInt32LittleEndian(info[12..], initrds.Count > 0 ? 1u : 0u);        // nr_modules
        BinaryPrimitives.WriteUInt64LittleEndian(info[16..], initrds.Count > 0 ? ModuleListAddress : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(info[24..], BootLayout.CommandLineAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(info[32..], rsdpAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(info[40..], MemoryMapAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(info[48..], (uint)entries);
        Span<byte> module = info[(int)(ModuleListAddress - StartInfoAddress)..];
        BinaryPrimitives.WriteUInt64LittleEndian(module, initrdAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(module[8..], initrdSize);
        for (int i = 0; i < entries; i++)
        {
            Span<byte> slot = info.Slice((int)(MemoryMapAddress - StartInfoAddress) + (i * MemoryMapEntrySize), MemoryMapEntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(slot, map.Entries[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(slot[8..], map.Entries[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(slot[16..], (uint)map.Entries[i].Type);
        }

        memory.Write(StartInfoAddress, startInfo);
        BootGdt.WriteProtectedMode(memory);
        VcpuState state = BootCpuState.ProtectedMode(image.Entry, 0, (uint)StartInfoAddress);

        var placements = new List<BootPlacement>(plan.Placements)
        {
            new("GDT", BootLayout.GdtAddress, BootLayout.GdtSize),
            new("hvm_start_info", StartInfoAddress, (ulong)startInfo.Length),
            new("command line", BootLayout.CommandLineAddress, (ulong)commandLine.Length),
        };
        placements.Sort((a, b) => a.Address.CompareTo(b.Address));
        string description = $"PVH ({image.Source}, ELF64 vmlinux, entry 0x{image.Entry:x})";
        return new BootResult(KernelFormat.Pvh, description, state, placements, map);
    }
}
