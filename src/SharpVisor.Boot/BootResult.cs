using System.Text;
using SharpVisor.Machine;

namespace SharpVisor.Boot;

/// <summary>What a loader did: vCPU 0's entry state and what it placed where.</summary>
public sealed class BootResult
{
    public BootResult(KernelFormat format, string kernelDescription, VcpuState state, IReadOnlyList<BootPlacement> placements, E820Map memoryMap)
    {
        Format = format;
        KernelDescription = kernelDescription;
        State = state;
        Placements = placements;
        MemoryMap = memoryMap;
    }

    public KernelFormat Format { get; }

    public string KernelDescription { get; }

    /// <summary>The state to load into vCPU 0 (the same for every accelerator).</summary>
    public VcpuState State { get; }

    public ulong EntryPoint => State.Rip;

    /// <summary>Kernel, initrd, modules and the boot structures used, in guest physical address order.</summary>
    public IReadOnlyList<BootPlacement> Placements { get; }

    /// <summary>The memory map the kernel was given (e820 in boot_params or the Multiboot mmap).</summary>
    public E820Map MemoryMap { get; }

    /// <summary>For a bzImage, whose decompressor ran: the VMM's (the kernel entered at startup_64) or the guest's; else null.</summary>
    public KernelDecompressor? Decompressor { get; internal set; }

    /// <summary>Lines for --verbose beyond the placements, such as why the guest's decompressor runs although the VMM's was asked for.</summary>
    public IReadOnlyList<string> Notes { get; internal set; } = [];

    public BootPlacement? Find(string name) => Placements.Where(p => p.Name == name).Cast<BootPlacement?>().FirstOrDefault();

    /// <summary>A few lines for --verbose output.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        text.Append($"{KernelDescription}; entry 0x{EntryPoint:x} ({(State.Cs.Long ? "64-bit long mode" : "32-bit protected mode")})");
        foreach (BootPlacement placement in Placements)
        {
            text.Append("\n  ").Append(placement);
        }

        foreach (string note in Notes)
        {
            text.Append('\n').Append(note);
        }

        return text.ToString();
    }
}
