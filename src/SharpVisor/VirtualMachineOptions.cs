namespace SharpVisor;

/// <summary>What to build: the kernel to boot and the machine around it. Only <see cref="KernelPath"/> is required.</summary>
public sealed record VirtualMachineOptions
{
    /// <summary>A Linux bzImage, an ELF or a Multiboot kernel.</summary>
    public required string KernelPath { get; init; }

    /// <summary>An initramfs, or null for none.</summary>
    public string? InitrdPath { get; init; }

    /// <summary>The kernel command line, e.g. "console=ttyS0"; the serial console is COM1 (ttyS0).</summary>
    public string CommandLine { get; init; } = "";

    /// <summary>
    /// Who decompresses a bzImage kernel (default: SharpVisor, which enters the kernel directly with
    /// KASLR off and falls back to the kernel's own decompressor for payloads it cannot decode).
    /// </summary>
    public KernelDecompressor KernelDecompressor { get; init; } = KernelDecompressor.Vmm;

    /// <summary>Guest RAM in MiB (default 512).</summary>
    public int MemoryMib { get; init; } = 512;

    /// <summary>Virtual CPUs (default 1).</summary>
    public int VcpuCount { get; init; } = 1;

    /// <summary>What runs the guest (default: KVM where the hardware virtualizes, else the emulator).</summary>
    public Accelerator Accelerator { get; init; } = Accelerator.Auto;

    /// <summary>virtio-blk disks in the order the guest names them.</summary>
    public IReadOnlyList<DiskOptions> Disks { get; init; } = [];

    /// <summary>virtio-net NICs over host TAP interfaces.</summary>
    public IReadOnlyList<NetworkInterfaceOptions> NetworkInterfaces { get; init; } = [];

    /// <summary>
    /// How much of the console's output <see cref="VirtualMachine.Console"/> keeps for a reader
    /// that has not caught up (default 1 MiB); beyond it the oldest bytes are dropped, so a guest
    /// is never stalled by a reader that does not read.
    /// </summary>
    public int ConsoleBufferBytes { get; init; } = 1 << 20;

    /// <summary>
    /// Where the VMM reports, one line each, what the guest did wrong that it survived (a device
    /// reset, a bad register access) and which accelerator it chose; null discards them.
    /// </summary>
    public Action<string>? Log { get; init; }
}
