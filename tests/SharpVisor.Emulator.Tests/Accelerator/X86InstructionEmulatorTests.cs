using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// The emulator as KVM's fallback: one instruction against a handed-over state (no accelerator of
/// its own), the result read back; instructions whose state is not handed over are refused and
/// leave the state as it was.
/// </summary>
public sealed class X86InstructionEmulatorTests : IDisposable
{
    private const ulong IdtAddress = 0x9000;
    private const ulong HandlerAddress = 0x12000;
    private const ulong Cr4OsXsave = 1UL << 18;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(2 << 20);
    private readonly X86InstructionEmulator _emulator;

    public X86InstructionEmulatorTests()
    {
        _emulator = new X86InstructionEmulator(_memory, new PortIoBus(), new MmioBus());
    }

    [Fact]
    public void XgetbvReturnsTheHandedOverXcr0AndAdvancesRip()
    {
        EmulatedInstructionState state = Load(a => a.xgetbv());
        state.Registers.Cr4 |= Cr4OsXsave;
        state.Registers.Rcx = 0;
        state.Xcr0 = 0xE7; // the host's AVX-512 components too: XGETBV reports what the vCPU has

        InstructionEmulationResult result = _emulator.EmulateOne(0, state);

        Assert.True(result.Completed, result.Failure);
        Assert.Equal("xgetbv", result.Mnemonic);
        Assert.Equal(0xE7UL, state.Registers.Rax);
        Assert.Equal(0UL, state.Registers.Rdx);
        Assert.Equal(LongModeTestGuest.CodeAddress + 3, state.Registers.Rip);
    }

    [Fact]
    public void Int3IsDeliveredThroughTheGuestIdt()
    {
        EmulatedInstructionState state = Load(a => a.int3());
        WriteInterruptGate(3, HandlerAddress);
        state.Registers.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
        ulong rsp = state.Registers.Rsp;

        InstructionEmulationResult result = _emulator.EmulateOne(0, state);

        Assert.True(result.Completed, result.Failure);
        Assert.Equal("int3", result.Mnemonic);
        Assert.Equal(HandlerAddress, state.Registers.Rip);
        Assert.Equal(rsp - 40, state.Registers.Rsp);
        Assert.Equal(LongModeTestGuest.CodeAddress + 1, _memory.Read<ulong>(state.Registers.Rsp)); // a trap: the next RIP
        Assert.Equal(LongModeTestGuest.CodeSelector, _memory.Read<ulong>(state.Registers.Rsp + 8));
    }

    [Theory]
    [InlineData("xrstor64")]
    [InlineData("fld1")]
    [InlineData("vaddps")]
    [InlineData("movq mm0")]
    public void InstructionsUsingStateThatIsNotHandedOverAreRefusedAndChangeNothing(string which)
    {
        EmulatedInstructionState state = Load(a =>
        {
            switch (which)
            {
                case "xrstor64":
                    a.xrstor64(__[rbx]);
                    break;
                case "fld1":
                    a.fld1();
                    break;
                case "vaddps":
                    a.vaddps(ymm0, ymm1, ymm2);
                    break;
                default:
                    a.movq(mm0, rax);
                    break;
            }
        });
        state.Registers.Cr4 |= Cr4OsXsave;
        VcpuState before = state.Registers.Clone();

        InstructionEmulationResult result = _emulator.EmulateOne(0, state);

        Assert.False(result.Completed);
        Assert.Contains("not carried", result.Failure);
        Assert.Equal(before.Rip, state.Registers.Rip);
        Assert.Equal(before.Rsp, state.Registers.Rsp);
    }

    public void Dispose() => _memory.Dispose();

    private EmulatedInstructionState Load(Action<Assembler> code)
    {
        LongModeTestGuest.Load(_memory, GuestCode.Assemble(64, LongModeTestGuest.CodeAddress, code));
        var registers = LongModeTestGuest.Configure(new VcpuState());
        registers.Cr4 |= VcpuState.Cr4OsFxsr;
        registers.Rbx = 0x30000;
        return new EmulatedInstructionState(registers);
    }

    private void WriteInterruptGate(byte vector, ulong handler)
    {
        ulong gate = IdtAddress + (vector * 16UL);
        _memory.Write(gate, (ushort)handler);
        _memory.Write(gate + 2, LongModeTestGuest.CodeSelector);
        _memory.Write(gate + 4, (byte)0);
        _memory.Write(gate + 5, (byte)0x8E);
        _memory.Write(gate + 6, (ushort)(handler >> 16));
        _memory.Write(gate + 8, (uint)(handler >> 32));
        _memory.Write(gate + 12, 0u);
    }
}
