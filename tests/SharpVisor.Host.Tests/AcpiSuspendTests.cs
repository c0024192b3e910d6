using System.Buffers.Binary;
using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Host.Tests;

/// <summary>
/// ACPI S3 (suspend to RAM) through the VMM with a tiny Multiboot guest: it finds the FACS
/// through the RSDP, RSDT and FADT, writes its waking vector, leaves a marker in RAM and writes
/// SLP_TYP=S3 | SLP_EN to PM1a_CNT. Resumed in real mode at the vector, it checks the marker
/// (RAM kept) and PM1_STS.WAK_STS and reports through the debug-exit port.
/// </summary>
public sealed class AcpiSuspendTests
{
    private const uint EntryOffset = 0x100;
    private const uint WakeOffset = 0x200;
    private const uint MarkerAddress = 0x8_0000;
    private const uint Marker = 0xCAFE_F00D;
    private const byte Resumed = 0x5A;
    private const byte MarkerLost = 0x11;
    private const byte NoWakeStatus = 0x22;
    private const byte NeverSuspended = 0x33;

    /// <param name="loadAddress">
    /// Both lie on the loader's fixed structures (0x8000: the boot stack, as real-mode test
    /// kernels; 0x10000: the Multiboot data area), so they also test that those move aside.
    /// </param>
    [Theory]
    [InlineData(1, 0x1_0000u)]
    [InlineData(2, 0x8000u)]
    public void TheGuestSuspendsToRamAndResumesAtItsWakingVector(int vcpus, uint loadAddress)
    {
        RunOutcome outcome = RunSuspendGuest(AcceleratorKind.Emulator, vcpus, loadAddress, out int resumes);

        Assert.Equal((MachineStopReason.DebugExit, (Resumed << 1) | 1), (outcome.Reason, outcome.ExitStatus));
        Assert.Equal(1, resumes);
    }

    [KvmFact]
    public void TheGuestSuspendsToRamAndResumesOnKvm()
    {
        RunOutcome outcome = RunSuspendGuest(AcceleratorKind.Kvm, 1, 0x1_0000, out int resumes);

        Assert.Equal((MachineStopReason.DebugExit, (Resumed << 1) | 1), (outcome.Reason, outcome.ExitStatus));
        Assert.Equal(1, resumes);
    }

    private static RunOutcome RunSuspendGuest(AcceleratorKind accelerator, int vcpus, uint loadAddress, out int resumes)
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("s3.bin");
        File.WriteAllBytes(kernel, BuildKernel(loadAddress));
        using VirtualMachineMonitor vmm = VirtualMachineMonitor.Create(new MachineConfiguration
        {
            KernelPath = kernel,
            MemorySize = 16UL << 20,
            VcpuCount = vcpus,
            Accelerator = accelerator,
            Mmu = accelerator == AcceleratorKind.Emulator ? MmuKind.Shadow : null,
            SerialOutput = new CapturedOutput(),
        });
        Assert.True(vmm.Boot.State.Rbx > loadAddress + 0x1000, "the Multiboot structures moved after the kernel");

        RunOutcome outcome = vmm.Run(TimeSpan.FromSeconds(30));
        resumes = vmm.Resumes;
        return outcome;
    }

    /// <summary>An a.out-kludge Multiboot image at <paramref name="loadAddress"/>: header, 32-bit entry, 16-bit waking code.</summary>
    private static byte[] BuildKernel(uint loadAddress)
    {
        uint entryAddress = loadAddress + EntryOffset;
        uint wakeAddress = loadAddress + WakeOffset;
        byte[] image = new byte[0x1000];
        const uint magic = 0x1BAD_B002;
        const uint flags = 1u << 16;
        Span<byte> header = image.AsSpan(0x40);
        BinaryPrimitives.WriteUInt32LittleEndian(header, magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], unchecked(0u - magic - flags));
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], loadAddress + 0x40); // header_addr
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], loadAddress);        // load_addr
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 0);                  // load_end_addr: whole file
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], 0);                  // bss_end_addr: none
        BinaryPrimitives.WriteUInt32LittleEndian(header[28..], entryAddress);

        byte[] entry = GuestCode.Assemble(32, entryAddress, a =>
        {
            a.mov(__dword_ptr[MarkerAddress], Marker);
            a.mov(esi, __dword_ptr[0xE_0000 + 16]); // RSDP.RsdtAddress
            a.mov(esi, __dword_ptr[esi + 36]);      // RSDT.Entry[0]: the FADT
            a.mov(esi, __dword_ptr[esi + 36]);      // FADT.FIRMWARE_CTRL: the FACS
            a.mov(__dword_ptr[esi + 12], wakeAddress); // Firmware_Waking_Vector
            a.mov(dx, 0x604);                       // PM1a_CNT
            a.mov(ax, (1 << 10) | (1 << 13));       // SLP_TYP = 1 (\_S3), SLP_EN
            a.@out(dx, ax);
            Label spin = a.CreateLabel();
            a.Label(ref spin);
            a.pause();
            a.jmp(spin);                            // the VMM stops the vCPU here
            a.mov(al, NeverSuspended);
            a.@out(0xF4, al);
        });
        entry.CopyTo(image, (int)EntryOffset);

        byte[] wake = GuestCode.Assemble(16, 0, a =>
        {
            // Real mode, CS = wakeAddress >> 4, IP = 0.
            Label lost = a.CreateLabel();
            Label noWake = a.CreateLabel();
            a.mov(ax, (ushort)(MarkerAddress >> 4));
            a.mov(ds, ax);
            a.cmp(__dword_ptr[0], unchecked((int)Marker));
            a.jne(lost);
            a.mov(dx, 0x600);                       // PM1a_STS
            a.@in(ax, dx);
            a.test(ax, unchecked((short)0x8000));   // WAK_STS
            a.jz(noWake);
            a.mov(al, Resumed);
            a.@out(0xF4, al);
            a.Label(ref lost);
            a.mov(al, MarkerLost);
            a.@out(0xF4, al);
            a.Label(ref noWake);
            a.mov(al, NoWakeStatus);
            a.@out(0xF4, al);
        });
        wake.CopyTo(image, (int)WakeOffset);
        return image;
    }
}
