using System.Buffers.Binary;
using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>
/// Device DMA and the emulator's decoded-code cache (issue 13, DMA coherence): a tiny Multiboot
/// guest calls a function in a page of its own (so the emulator decodes and caches it), then
/// drives the virtio-blk disk itself — PCI configuration, the modern virtio-pci common
/// configuration, one split virtqueue — to read the disk's first 4 KiB into that same page,
/// polls the used ring, and calls the function again. The disk holds a different function:
/// the guest must run the new code, not the blocks decoded from the old bytes.
/// </summary>
public sealed class DmaCodeCoherenceTests
{
    private const uint LoadAddress = 0x10_0000;
    private const uint EntryOffset = 0x100;
    private const uint FunctionOffset = 0x1000;
    private const uint FunctionAddress = LoadAddress + FunctionOffset;
    private const uint Descriptors = 0x30_0000;
    private const uint AvailRing = 0x30_1000;
    private const uint UsedRing = 0x30_2000;
    private const uint RequestHeader = 0x30_3000;
    private const uint RequestStatus = 0x30_3100;
    private const ushort QueueSize = 8;

    private const byte OldResult = 0x11;
    private const byte NewResult = 0x22;
    private const byte NoDevice = 0x31;
    private const byte FeaturesRefused = 0x32;
    private const byte RequestFailed = 0x33;
    private const byte FirstCallWrong = 0x34;

    /// <summary>PCI slot 1: the first disk, right after the host bridge (docs/virtio.md, "In the VMM").</summary>
    private const uint ConfigAddress = 0x8000_0000 | (1u << 11);

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void ADiskReadOverExecutedCodeRunsTheNewCode(MmuMode mmu)
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("dma.bin");
        File.WriteAllBytes(kernel, BuildKernel());
        string disk = directory.File("disk.img");
        byte[] image = new byte[64 * 1024];
        Function(NewResult).CopyTo(image, 0);
        File.WriteAllBytes(disk, image);

        using VirtualMachineMonitor vmm = VirtualMachineMonitor.Create(new MachineConfiguration
        {
            KernelPath = kernel,
            MemorySize = 16UL << 20,
            VcpuCount = 1,
            Accelerator = AcceleratorKind.Emulator,
            Mmu = mmu.ToMmuKind(),
            SerialOutput = new CapturedOutput(),
            Disks = [new DiskConfiguration(disk)],
        });

        RunOutcome outcome = vmm.Run(TimeSpan.FromSeconds(60));

        Assert.True(outcome.Reason == MachineStopReason.DebugExit, $"the guest did not report: {outcome.Reason} {outcome.Detail}");
        int reported = (outcome.ExitStatus - 1) >> 1;
        Assert.True(reported == NewResult, reported == OldResult
            ? "the guest ran the code decoded before the disk read replaced it (stale blocks)"
            : $"the guest reported 0x{reported:x2} (0x31 no device, 0x32 features refused, 0x33 request failed, 0x34 first call wrong)");
    }

    /// <summary>mov al, result; ret — the function the guest calls before and after the read.</summary>
    private static byte[] Function(byte result) => GuestCode.Assemble(32, FunctionAddress, a =>
    {
        a.mov(al, result);
        a.ret();
    });

    /// <summary>An a.out-kludge Multiboot image at 1 MiB: header, 32-bit entry, and the function's page.</summary>
    private static byte[] BuildKernel()
    {
        byte[] image = new byte[0x2000];
        const uint magic = 0x1BAD_B002;
        const uint flags = 1u << 16;
        Span<byte> header = image.AsSpan(0x40);
        BinaryPrimitives.WriteUInt32LittleEndian(header, magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], unchecked(0u - magic - flags));
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], LoadAddress + 0x40); // header_addr
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], LoadAddress);        // load_addr
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 0);                  // load_end_addr: whole file
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], 0);                  // bss_end_addr: none
        BinaryPrimitives.WriteUInt32LittleEndian(header[28..], LoadAddress + EntryOffset);

        Function(OldResult).CopyTo(image, (int)FunctionOffset);
        GuestCode.Assemble(32, LoadAddress + EntryOffset, Driver).CopyTo(image, (int)EntryOffset);
        return image;
    }

    /// <summary>
    /// The guest: run the function (decoded now), find BAR0 of slot 1, set the device up with
    /// one queue, read sectors 0-7 into the function's page, wait for the used ring, run the
    /// function again and report what it returned on the debug-exit port. EBX holds BAR0.
    /// </summary>
    private static void Driver(Assembler a)
    {
        Label fail = a.CreateLabel();
        Label wait = a.CreateLabel();
        a.cli();
        a.mov(esp, 0x9_0000);
        a.mov(eax, FunctionAddress);
        a.call(eax);
        a.mov(cl, FirstCallWrong);
        a.cmp(al, OldResult);
        a.jne(fail);

        // PCI: vendor/device of slot 1 must be virtio-blk (1AF4:1042); BAR0 (64-bit, below 4 GiB).
        a.mov(cl, NoDevice);
        a.mov(eax, ConfigAddress);
        a.mov(dx, 0xCF8);
        a.@out(dx, eax);
        a.mov(dx, 0xCFC);
        a.@in(eax, dx);
        a.cmp(eax, 0x1042_1AF4);
        a.jne(fail);
        a.mov(eax, ConfigAddress | 0x10);
        a.mov(dx, 0xCF8);
        a.@out(dx, eax);
        a.mov(dx, 0xCFC);
        a.@in(eax, dx);
        a.and(eax, ~0xFu);
        a.mov(ebx, eax);
        a.mov(eax, ConfigAddress | 0x04);           // command: memory space + bus master
        a.mov(dx, 0xCF8);
        a.@out(dx, eax);
        a.mov(dx, 0xCFC);
        a.mov(eax, 0x6);
        a.@out(dx, eax);

        // virtio 1.x initialisation (common configuration at BAR0 + 0).
        a.mov(__byte_ptr[ebx + 0x14], 0);            // reset
        a.mov(__byte_ptr[ebx + 0x14], 1);            // ACKNOWLEDGE
        a.mov(__byte_ptr[ebx + 0x14], 3);            // DRIVER
        a.mov(__dword_ptr[ebx + 0x08], 1);           // driver_feature_select = 1
        a.mov(__dword_ptr[ebx + 0x0C], 1);           // VIRTIO_F_VERSION_1 (bit 32), nothing else
        a.mov(__byte_ptr[ebx + 0x14], 0xB);          // FEATURES_OK
        a.mov(cl, FeaturesRefused);
        a.test(__byte_ptr[ebx + 0x14], 8);
        a.jz(fail);
        a.mov(__word_ptr[ebx + 0x16], 0);            // queue_select = 0
        a.mov(__word_ptr[ebx + 0x18], QueueSize);
        a.mov(__dword_ptr[ebx + 0x20], Descriptors);
        a.mov(__dword_ptr[ebx + 0x24], 0);
        a.mov(__dword_ptr[ebx + 0x28], AvailRing);
        a.mov(__dword_ptr[ebx + 0x2C], 0);
        a.mov(__dword_ptr[ebx + 0x30], UsedRing);
        a.mov(__dword_ptr[ebx + 0x34], 0);
        a.mov(__word_ptr[ebx + 0x1C], 1);            // queue_enable
        a.mov(__byte_ptr[ebx + 0x14], 0xF);          // DRIVER_OK

        // One request: header (IN, sector 0), the function's page (device-writable), status.
        a.mov(__dword_ptr[RequestHeader], 0);        // VIRTIO_BLK_T_IN
        a.mov(__dword_ptr[RequestHeader + 4], 0);
        a.mov(__dword_ptr[RequestHeader + 8], 0);    // sector 0
        a.mov(__dword_ptr[RequestHeader + 12], 0);
        a.mov(__byte_ptr[RequestStatus], 0xFF);
        Descriptor(a, 0, RequestHeader, 16, flags: 1, next: 1);
        Descriptor(a, 1, FunctionAddress, 4096, flags: 1 | 2, next: 2);
        Descriptor(a, 2, RequestStatus, 1, flags: 2, next: 0);
        a.mov(__word_ptr[AvailRing], 0);             // flags
        a.mov(__word_ptr[AvailRing + 4], 0);         // ring[0] = head 0
        a.mov(__word_ptr[AvailRing + 2], 1);         // idx = 1
        a.mov(__word_ptr[ebx + 0x3000], 0);          // notify queue 0

        a.Label(ref wait);
        a.pause();
        a.cmp(__word_ptr[UsedRing + 2], 1);
        a.jne(wait);
        a.mov(cl, RequestFailed);
        a.cmp(__byte_ptr[RequestStatus], 0);
        a.jne(fail);

        a.mov(eax, FunctionAddress);
        a.call(eax);
        a.@out(0xF4, al);
        a.Label(ref fail);
        a.mov(al, cl);
        a.@out(0xF4, al);
    }

    private static void Descriptor(Assembler a, int index, uint address, uint length, ushort flags, ushort next)
    {
        uint at = Descriptors + (uint)(16 * index);
        a.mov(__dword_ptr[at], address);
        a.mov(__dword_ptr[at + 4], 0);
        a.mov(__dword_ptr[at + 8], length);
        a.mov(__word_ptr[at + 12], flags);
        a.mov(__word_ptr[at + 14], next);
    }
}
