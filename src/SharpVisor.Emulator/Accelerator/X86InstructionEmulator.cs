using System.Buffers.Binary;
using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// SharpVisor's x86 emulator as another accelerator's fallback (<see cref="IInstructionEmulator"/>):
/// an <see cref="X86Cpu"/> over the machine's guest memory, port I/O and MMIO buses, loaded with
/// the vCPU's state, run for exactly one instruction in system mode (a fault or a software
/// interrupt goes through the guest's IDT), and read back. Each call gets a fresh CPU: the guest
/// changed code and page tables meanwhile under the other accelerator, so no decoded block or
/// translation may survive, and an instruction the emulator lacks is reported every time.
/// </summary>
public sealed class X86InstructionEmulator : IInstructionEmulator
{
    private readonly GuestMemory _memory;
    private readonly PortIoBus _portIo;
    private readonly MmioBus _mmio;
    private readonly CpuModel _model;

    public X86InstructionEmulator(GuestMemory memory, PortIoBus portIo, MmioBus mmio, CpuModel? model = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(portIo);
        ArgumentNullException.ThrowIfNull(mmio);
        _memory = memory;
        _portIo = portIo;
        _mmio = mmio;
        _model = model ?? CpuModel.Default;
    }

    /// <summary>
    /// Kernel protection: the instruction run here obeys the same map as the accelerator's own
    /// enforcement (a store the KVM slots would refuse, a pinned CR or MSR), so the fallback is no way around it.
    /// </summary>
    public SharpVisor.Machine.Protection.ProtectionMap? Protection { get; set; }

    public InstructionEmulationResult EmulateOne(int vcpuId, EmulatedInstructionState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        VcpuState registers = state.Registers;
        byte[]? code = GuestCodeReader.Read(_memory, registers, _model.PhysicalAddressBits);
        if (code is null)
        {
            return InstructionEmulationResult.Refused("unknown", $"no readable code at RIP 0x{registers.Rip:x}");
        }

        Instruction instruction = Decode(code, registers);
        string mnemonic = instruction.Code == Code.INVALID ? "invalid" : instruction.Mnemonic.ToString().ToLowerInvariant();
        if (UsesUncarriedState(instruction) is { } uncarried)
        {
            return InstructionEmulationResult.Refused(mnemonic, uncarried);
        }

        string? unimplemented = null;
        X86Cpu cpu = CreateCpu(vcpuId);
        cpu.Diagnostics = line => unimplemented ??= line;
        try
        {
            cpu.SetState(registers);
            cpu._xcr0 = state.Xcr0;
            cpu.Mxcsr = state.Mxcsr;
            for (int i = 0; i < 16; i++)
            {
                ReadOnlySpan<byte> xmm = state.Xmm.AsSpan(i * 16, 16);
                cpu.SetXmm(i, new UInt128(BinaryPrimitives.ReadUInt64LittleEndian(xmm[8..]), BinaryPrimitives.ReadUInt64LittleEndian(xmm)));
            }
        }
        catch (ArgumentException e)
        {
            return InstructionEmulationResult.Refused(mnemonic, $"the vCPU's state cannot be loaded: {e.Message}");
        }

        CpuRunResult result = cpu.Run(1);
        if (unimplemented is not null)
        {
            // The emulator would raise #UD for an instruction the CPU has: leave the guest as it was.
            return InstructionEmulationResult.Refused(mnemonic, $"not implemented by SharpVisor's emulator either ({unimplemented})");
        }

        switch (result.Reason)
        {
            case CpuStopReason.InstructionLimit:
            case CpuStopReason.StopRequested:
                break;
            case CpuStopReason.TripleFault:
                return InstructionEmulationResult.Refused(mnemonic, $"triple fault while emulating it: {result.Detail}");
            default:
                return InstructionEmulationResult.Refused(mnemonic, $"the emulator stopped with {result.Reason}");
        }

        VcpuState after = cpu.GetState();
        CopyRegisters(after, registers);
        state.Xcr0 = cpu._xcr0;
        state.Mxcsr = cpu.Mxcsr;
        for (int i = 0; i < 16; i++)
        {
            UInt128 value = cpu.GetXmm(i);
            Span<byte> xmm = state.Xmm.AsSpan(i * 16, 16);
            BinaryPrimitives.WriteUInt64LittleEndian(xmm, (ulong)value);
            BinaryPrimitives.WriteUInt64LittleEndian(xmm[8..], (ulong)(value >> 64));
        }

        return InstructionEmulationResult.Done(mnemonic);
    }

    /// <summary>Decodes the instruction at RIP in the vCPU's current code size.</summary>
    public static Instruction Decode(byte[] code, VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(code);
        ArgumentNullException.ThrowIfNull(state);
        int bitness = (state.Efer & VcpuState.EferLongModeActive) != 0 && state.Cs.Long ? 64
            : (state.Cr0 & VcpuState.Cr0ProtectionEnable) != 0 && state.Cs.DefaultBig ? 32
            : 16;
        Decoder decoder = Decoder.Create(bitness, new ByteArrayCodeReader(code), state.Rip);
        decoder.Decode(out Instruction instruction);
        return instruction;
    }

    /// <summary>
    /// Why the instruction needs state that is not handed over (x87, MMX, AVX/AVX-512, the XSAVE
    /// and FXSAVE images), or null. Running it would read or write registers the other accelerator
    /// never sees, so it is refused rather than half done.
    /// </summary>
    public static string? UsesUncarriedState(in Instruction instruction)
    {
        if (instruction.Encoding != EncodingKind.Legacy)
        {
            return $"{instruction.Encoding}-encoded instructions use AVX/AVX-512 state, which is not carried between the accelerators";
        }

        switch (instruction.Mnemonic)
        {
            case Mnemonic.Fxsave or Mnemonic.Fxsave64 or Mnemonic.Fxrstor or Mnemonic.Fxrstor64
                or Mnemonic.Xsave or Mnemonic.Xsave64 or Mnemonic.Xsaveopt or Mnemonic.Xsaveopt64
                or Mnemonic.Xsavec or Mnemonic.Xsavec64 or Mnemonic.Xsaves or Mnemonic.Xsaves64
                or Mnemonic.Xrstor or Mnemonic.Xrstor64 or Mnemonic.Xrstors or Mnemonic.Xrstors64:
                return "it saves or restores the x87/SSE/AVX state image, which is not carried between the accelerators";
        }

        foreach (CpuidFeature feature in instruction.Code.CpuidFeatures())
        {
            if (feature is CpuidFeature.FPU or CpuidFeature.FPU287 or CpuidFeature.FPU387 or CpuidFeature.FPU387SL_ONLY or CpuidFeature.MMX)
            {
                return "it uses the x87/MMX registers, which are not carried between the accelerators";
            }
        }

        return null;
    }

    // Unclaimed MMIO reads return all-ones and writes are dropped, as on KVM.
    private X86Cpu CreateCpu(int vcpuId) => new(new PhysicalMemory(_memory, new BusMmioHandler(_mmio)), _model)
    {
        DeliverExceptions = true,
        PortIo = _portIo,
        Protection = Protection,
        ProtectionVcpuId = vcpuId,
    };

    /// <summary>Copies what an instruction can change; the APIC base and CR8 stay the accelerator's.</summary>
    private static void CopyRegisters(VcpuState from, VcpuState to)
    {
        ulong apicBase = to.ApicBase;
        ulong cr8 = to.Cr8;
        (to.Rax, to.Rbx, to.Rcx, to.Rdx, to.Rsi, to.Rdi, to.Rsp, to.Rbp) = (from.Rax, from.Rbx, from.Rcx, from.Rdx, from.Rsi, from.Rdi, from.Rsp, from.Rbp);
        (to.R8, to.R9, to.R10, to.R11, to.R12, to.R13, to.R14, to.R15) = (from.R8, from.R9, from.R10, from.R11, from.R12, from.R13, from.R14, from.R15);
        (to.Rip, to.Rflags) = (from.Rip, from.Rflags);
        (to.Cs, to.Ds, to.Es, to.Fs, to.Gs, to.Ss, to.Tr, to.Ldt) = (from.Cs, from.Ds, from.Es, from.Fs, from.Gs, from.Ss, from.Tr, from.Ldt);
        (to.Gdt, to.Idt) = (from.Gdt, from.Idt);
        (to.Cr0, to.Cr2, to.Cr3, to.Cr4, to.Efer) = (from.Cr0, from.Cr2, from.Cr3, from.Cr4, from.Efer);
        to.ApicBase = apicBase;
        to.Cr8 = cr8;
    }

    private sealed class BusMmioHandler : IMmioHandler
    {
        private readonly MmioBus _bus;

        public BusMmioHandler(MmioBus bus)
        {
            _bus = bus;
        }

        public bool Read(ulong physicalAddress, Span<byte> data)
        {
            _bus.Read(physicalAddress, data);
            return true;
        }

        public bool Write(ulong physicalAddress, ReadOnlySpan<byte> data)
        {
            _bus.Write(physicalAddress, data);
            return true;
        }
    }
}
