using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Emulator.Tests;

/// <summary>A CPU over a small flat RAM with helpers to load code and set up 64/32/16-bit state.</summary>
internal sealed class TestCpu : IDisposable
{
    public const ulong CodeAddress = 0x1000;
    public const ulong StackTop = 0x80000;

    public TestCpu(ulong ramSize = 2 << 20, CpuModel? model = null)
    {
        Memory = GuestMemory.CreateRam(ramSize);
        Cpu = new X86Cpu(new PhysicalMemory(Memory), model);
        IdentityPml4 = ramSize - 0x2000;
        WriteIdentityPageTables();
    }

    /// <summary>A PML4 at the end of RAM whose 1 GiB pages identity-map the first 4 GiB (user, writable, executable).</summary>
    public ulong IdentityPml4 { get; }

    private void WriteIdentityPageTables()
    {
        const ulong presentWritableUser = 0x7;
        const ulong largePage = 0x80;
        ulong pdpt = IdentityPml4 + 0x1000;
        Memory.Write(IdentityPml4, pdpt | presentWritableUser);
        for (ulong i = 0; i < 4; i++)
        {
            Memory.Write(pdpt + (i * 8), (i << 30) | presentWritableUser | largePage);
        }
    }

    public GuestMemory Memory { get; }

    public X86Cpu Cpu { get; }

    /// <summary>64-bit long mode, CPL 0, flat segments, RIP at the code.</summary>
    public void EnterLongMode(int cpl = 0)
    {
        var state = new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt,
            Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferSyscall | VcpuState.EferNoExecute,
            Cr3 = IdentityPml4,
            Cs = SegmentRegister.Flat((ushort)(cpl == 3 ? 0x33 : 0x08), 0xB, longMode: true, defaultBig: false) with { Dpl = (byte)cpl },
            Ss = SegmentRegister.Flat((ushort)(cpl == 3 ? 0x2B : 0x10), 0x3, false, true) with { Dpl = (byte)cpl },
            Ds = SegmentRegister.Flat(0, 0x3, false, true),
            Es = SegmentRegister.Flat(0, 0x3, false, true),
            Fs = SegmentRegister.Flat(0, 0x3, false, true),
            Gs = SegmentRegister.Flat(0, 0x3, false, true),
            Rip = CodeAddress,
            Rsp = StackTop,
            Rflags = 0x2,
        };
        Cpu.SetState(state);
    }

    /// <summary>32-bit protected mode with flat 4 GiB segments.</summary>
    public void EnterProtectedMode32()
    {
        var state = new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType,
            Cs = SegmentRegister.Flat(0x08, 0xB, longMode: false, defaultBig: true),
            Ss = SegmentRegister.Flat(0x10, 0x3, false, true),
            Ds = SegmentRegister.Flat(0x10, 0x3, false, true),
            Es = SegmentRegister.Flat(0x10, 0x3, false, true),
            Fs = SegmentRegister.Flat(0x10, 0x3, false, true),
            Gs = SegmentRegister.Flat(0x10, 0x3, false, true),
            Rip = CodeAddress,
            Rsp = StackTop,
            Rflags = 0x2,
        };
        Cpu.SetState(state);
    }

    /// <summary>Real mode with all segments at <paramref name="segment"/>.</summary>
    public void EnterRealMode(ushort segment, ushort ip, ushort sp)
    {
        Cpu.Reset();
        var state = Cpu.GetState();
        SegmentRegister real = new()
        {
            Selector = segment, Base = (ulong)segment << 4, Limit = 0xFFFF, Type = 3, Present = true, CodeOrData = true,
        };
        state.Cs = real with { Type = 0xB };
        state.Ds = state.Es = state.Fs = state.Gs = state.Ss = real;
        state.Rip = ip;
        state.Rsp = sp;
        Cpu.SetState(state);
    }

    /// <summary>Assembles code at <see cref="CodeAddress"/> (or <paramref name="address"/>) and points RIP at it.</summary>
    public byte[] Load(int bitness, Action<Assembler> build, ulong address = CodeAddress)
    {
        byte[] code = GuestCode.Assemble(bitness, address, build);
        Memory.Write(address, code);
        Cpu.InvalidateCode(address, (ulong)code.Length);
        return code;
    }

    /// <summary>Runs until HLT and asserts it got there.</summary>
    public void RunToHalt(long limit = 10_000_000)
    {
        CpuRunResult result = Cpu.Run(limit);
        Assert.True(result.Reason == CpuStopReason.Halted, $"expected HLT, got {result} at RIP 0x{Cpu.Rip:x}");
    }

    public void Dispose() => Memory.Dispose();
}
