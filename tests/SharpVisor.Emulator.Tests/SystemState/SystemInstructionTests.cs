using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>Fast system calls, MSRs, control registers, privilege checks and CPUID coherence.</summary>
public sealed class SystemInstructionTests
{
    [Fact]
    public void SyscallAndSysretRoundTripToUserMode()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong entry = 0x18_8000;
        ulong star = ((ulong)(SystemMachine.UserCode32 & ~3) << 48) | ((ulong)SystemMachine.KernelCode64 << 32);
        m.Load(entry, a =>
        {
            a.mov(r12, rcx);         // user RIP
            a.mov(r13, r11);         // user RFLAGS
            a.pushfq();
            a.pop(r14);              // kernel RFLAGS: SFMASK cleared IF
            a.mov(r15, cs);
            a.mov(eax, 0x99);
            a.sysretq();
        });
        m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(eax, 60);
            a.syscall();
            a.mov(rbx, cs);
            a.ud2();
        });
        ulong afterSyscall = SystemMachine.UserCode + 7; // after MOV EAX, imm32 and SYSCALL
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, 0xC000_0081);
            a.mov(rdx, star >> 32);
            a.xor(eax, eax);
            a.wrmsr();
            a.mov(ecx, 0xC000_0082);
            a.mov(eax, (uint)entry);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0xC000_0084);
            a.mov(eax, 0x200);       // SFMASK: IF
            a.wrmsr();
            a.mov(rcx, SystemMachine.UserCode);
            a.mov(r11, 0x202);
            a.mov(rsp, SystemMachine.UserStackTop);
            a.sysretq();
        });
        m.EnterLongMode();
        m.RunToHandler(6);
        Assert.Equal(afterSyscall, m.Cpu.GetRegister(12));
        Assert.Equal(0x202UL, m.Cpu.GetRegister(13) & 0x202);
        Assert.Equal(0UL, m.Cpu.GetRegister(14) & 0x200);
        Assert.Equal((ulong)SystemMachine.KernelCode64, m.Cpu.GetRegister(15));
        Assert.Equal((ulong)SystemMachine.UserCode64, m.Cpu.GetRegister(3) & 0xFFFF);
        Assert.Equal(0x99UL, m.Cpu.GetRegister(0));
        Assert.Equal((ulong)SystemMachine.UserCode64, m.StackSlot(1)); // #UD came from CPL 3
    }

    [Fact]
    public void SysenterAndSysexitRoundTrip()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        ulong entry = 0x18_8000;
        m.Load(entry, a =>
        {
            a.mov(r12, rsp);          // SYSENTER_ESP
            a.mov(r13, cs);
            a.mov(rdx, SystemMachine.UserCode + 0x40);
            a.mov(rcx, SystemMachine.UserStackTop - 0x100);
            a.db(0x48, 0x0F, 0x35);   // sysexitq
        });
        m.Load(SystemMachine.UserCode, a => a.sysenter());
        m.Load(SystemMachine.UserCode + 0x40, a =>
        {
            a.mov(rbx, cs);
            a.mov(rsi, rsp);
            a.ud2();
        });

        // SYSENTER_CS names the kernel code (0x10); SYSEXIT to 64-bit code takes CS = +32, SS = +40.
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.xor(edx, edx);
            a.mov(ecx, 0x174);
            a.mov(eax, (int)SystemMachine.KernelCode64);
            a.wrmsr();
            a.mov(ecx, 0x175);
            a.mov(eax, 0x8_8000);
            a.wrmsr();
            a.mov(ecx, 0x176);
            a.mov(eax, (uint)entry);
            a.wrmsr();
            a.push(SystemMachine.UserData);
            a.push((int)SystemMachine.UserStackTop);
            a.push(0x202);
            a.push(SystemMachine.UserCode64);
            a.push((int)SystemMachine.UserCode);
            a.iretq();
        });
        m.EnterLongMode();
        m.RunToHandler(6);
        Assert.Equal(0x8_8000UL, m.Cpu.GetRegister(12));
        Assert.Equal((ulong)SystemMachine.KernelCode64, m.Cpu.GetRegister(13));
        Assert.Equal((ulong)(SystemMachine.KernelCode64 + 32) | 3, m.Cpu.GetRegister(3) & 0xFFFF);
        Assert.Equal(SystemMachine.UserStackTop - 0x100, m.Cpu.GetRegister(6));
    }

    [Fact]
    public void RepInsAndOutsMoveStringsThroughAPort()
    {
        using var m = new SystemMachine();
        var device = new FifoPort();
        m.Cpu.PortIo = new SharpVisor.Machine.PortIoBus();
        m.Cpu.PortIo.Register(0x300, 2, device, "test fifo");
        ulong source = SystemMachine.UserDataArea;
        ulong destination = SystemMachine.UserDataArea + 0x1000;
        m.Memory.Write(source, "hello, port"u8.ToArray());
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(edx, 0x300);
            a.mov(rsi, source);
            a.mov(ecx, 11);
            a.rep.outsb();
            a.mov(rdi, destination);
            a.mov(ecx, 11);
            a.rep.insb();
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        byte[] copy = new byte[11];
        m.Memory.Read(destination, copy);
        Assert.Equal("hello, port"u8.ToArray(), copy);
        Assert.Equal(0UL, m.Cpu.GetRegister(1));
        Assert.Equal(source + 11, m.Cpu.GetRegister(6));
        Assert.Equal(destination + 11, m.Cpu.GetRegister(7));
    }

    /// <summary>A port that queues what is written and gives it back on reads.</summary>
    private sealed class FifoPort : SharpVisor.Machine.IPortIoDevice
    {
        private readonly Queue<byte> _bytes = new();

        public void Read(ushort offset, Span<byte> data)
        {
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = _bytes.TryDequeue(out byte b) ? b : (byte)0xFF;
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            foreach (byte b in data)
            {
                _bytes.Enqueue(b);
            }
        }
    }

    [Fact]
    public void SwapgsExchangesTheGsBases()
    {
        using var m = new SystemMachine();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, 0xC000_0101);  // GS_BASE
            a.mov(eax, 0x1000);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0xC000_0102);  // KERNEL_GS_BASE
            a.mov(eax, 0x2000);
            a.wrmsr();
            a.swapgs();
            a.mov(ecx, 0xC000_0101);
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(ecx, 0xC000_0102);
            a.rdmsr();
            a.mov(r9, rax);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(0x2000UL, m.Cpu.GetRegister(8));
        Assert.Equal(0x1000UL, m.Cpu.GetRegister(9));
        Assert.Equal(0x2000UL, m.Cpu.GetSegmentBase(5));
    }

    public static TheoryData<string, int> PrivilegedAtCpl3 => new()
    {
        { "mov cr0", 13 }, { "hlt", 13 }, { "rdmsr", 13 }, { "wrmsr", 13 }, { "lgdt", 13 }, { "invlpg", 13 },
        { "wbinvd", 13 }, { "clts", 13 }, { "swapgs", 13 }, { "sysret", 13 }, { "in", 13 }, { "cli", 13 },
        { "mov dr7", 13 }, { "ltr", 13 },
    };

    [Theory]
    [MemberData(nameof(PrivilegedAtCpl3))]
    public void PrivilegedInstructionsFaultInUserMode(string instruction, int vector)
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.UserCode, a =>
        {
            switch (instruction)
            {
                case "mov cr0": a.mov(rax, cr0); break;
                case "hlt": a.hlt(); break;
                case "rdmsr": a.rdmsr(); break;
                case "wrmsr": a.wrmsr(); break;
                case "lgdt": a.lgdt(__[rax]); break;
                case "invlpg": a.invlpg(__byte_ptr[rax]); break;
                case "wbinvd": a.wbinvd(); break;
                case "clts": a.clts(); break;
                case "swapgs": a.swapgs(); break;
                case "sysret": a.sysretq(); break;
                case "in": a.@in(al, 0x80); break;
                case "cli": a.cli(); break;
                case "mov dr7": a.mov(dr7, rax); break;
                case "ltr": a.ltr(ax); break;
            }

            a.nop();
        });
        m.EnterUserMode();
        m.RunToHandler(vector);
        Assert.Equal(0UL, m.StackSlot(0));
        Assert.Equal(SystemMachine.UserCode, m.StackSlot(1));
    }

    [Fact]
    public void TheTssIoBitmapGrantsSinglePorts()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Memory.Write(SystemMachine.TssAddress + 0x66, (ushort)0x70);      // bitmap at +0x70
        m.Memory.Write(SystemMachine.TssAddress + 0x70 + 0x10, (byte)0xFE); // ports 0x80 allowed, 0x81-0x87 not
        m.Memory.Write(SystemMachine.TssAddress + 0x70 + 0x11, (byte)0xFF);
        ulong end = m.Load(SystemMachine.UserCode, a =>
        {
            a.@in(al, 0x80);
            a.mov(r8, 1);
            a.@in(al, 0x81);
        });
        m.EnterUserMode();
        var state = m.Cpu.GetState();
        state.Tr = state.Tr with { Limit = 0x1000 };
        m.Cpu.SetState(state);
        m.RunToHandler(13);
        Assert.Equal(1UL, m.Cpu.GetRegister(8));
        Assert.Equal(end - 2, m.StackSlot(1)); // the second IN
    }

    [Fact]
    public void ControlRegisterWritesRejectWhatIsNotImplemented()
    {
        using var m = new SystemMachine(model: new CpuModel(CpuModel.Default.Features & ~(CpuFeature.Xsave | CpuFeature.Smep)));
        m.InstallHaltHandlers();
        ulong resume = 0x18_8000;
        m.Load(resume, a =>
        {
            a.add(rsp, 8);                 // error code
            a.add(__qword_ptr[rsp], 3);      // skip the 3-byte MOV CRn
            a.inc(r15);
            a.iretq();
        });
        m.SetGate(13, resume);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rbx, cr4);
            a.mov(rax, rbx);
            a.or(rax, 1 << 17);                // PCIDE
            a.mov(cr4, rax);
            a.mov(rax, rbx);
            a.or(rax, 1 << 20);                // SMEP on a model without it
            a.mov(cr4, rax);
            a.mov(rax, rbx);
            a.or(rax, 1 << 18);                // OSXSAVE without XSAVE
            a.mov(cr4, rax);
            a.mov(rax, rbx);
            a.and(rax, ~(1 << 5));             // PAE off in long mode
            a.mov(cr4, rax);
            a.mov(rax, cr3);
            a.bts(rax, 63);                    // no-flush hint without PCID
            a.mov(cr3, rax);
            a.mov(rax, cr0);
            a.btr(rax, 0);                     // PE off with PG on
            a.mov(cr0, rax);
            a.mov(rax, cr4);
            a.mov(r8, rax);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(6UL, m.Cpu.GetRegister(15));
        Assert.Equal(m.Cpu.GetRegister(3), m.Cpu.GetRegister(8));
    }

    [Fact]
    public void MsrsLinuxReadsAtBootAnswerAndUnknownOnesFault()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, 0x1A0);      // IA32_MISC_ENABLE
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(ecx, 0x8B);       // microcode revision: write 0, read
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.wrmsr();
            a.rdmsr();
            a.mov(r9, rdx);
            a.mov(ecx, 0x10A);      // IA32_ARCH_CAPABILITIES
            a.rdmsr();
            a.mov(r10, rax);
            a.mov(r11, rdx);
            a.mov(ecx, 0x277);      // PAT: an invalid memory type faults
            a.mov(eax, 0x0202_0202);
            a.mov(edx, eax);
            a.wrmsr();
        });
        m.EnterLongMode();
        m.RunToHandler(13);
        Assert.Equal(X86Cpu.MiscEnableDefault, m.Cpu.GetRegister(8));
        Assert.Equal(1UL, m.Cpu.GetRegister(9));
        Assert.Equal(X86Cpu.ArchCapabilitiesValue & 0xFFFF_FFFF, m.Cpu.GetRegister(10));
        Assert.Equal(X86Cpu.ArchCapabilitiesValue >> 32, m.Cpu.GetRegister(11));
        Assert.NotEqual(0UL, X86Cpu.ArchCapabilitiesValue & (1UL << 62)); // ITS_NO: no ITS return thunks in the guest
        Assert.Equal(0UL, m.StackSlot(0));

        using var n = new SystemMachine();
        n.InstallHaltHandlers();
        n.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, 0x4B56_4D01);   // a platform MSR, and no platform
            a.rdmsr();
        });
        n.EnterLongMode();
        n.RunToHandler(13);
    }

    [Fact]
    public void ThePlatformAnswersMsrsCpuidTscAndCr8()
    {
        using var m = new SystemMachine();
        var platform = new RecordingPlatform();
        m.Cpu.Platform = platform;
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, 0x4B56_4D01);
            a.mov(eax, 0x1234);
            a.xor(edx, edx);
            a.wrmsr();
            a.rdmsr();
            a.mov(r8, rax);
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(r9, rax);
            a.mov(eax, 0x4000_0000);
            a.cpuid();
            a.mov(r10, rbx);
            a.mov(eax, 5);
            a.mov(cr8, rax);
            a.mov(r11, cr8);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(0x1234UL, m.Cpu.GetRegister(8));
        Assert.Equal(RecordingPlatform.Tsc, m.Cpu.GetRegister(9));
        Assert.Equal(0x4B4D_564BUL, m.Cpu.GetRegister(10));
        Assert.Equal(5UL, m.Cpu.GetRegister(11));
        Assert.Equal(5UL, platform.Cr8);
    }

    [Fact]
    public void RdtscFaultsInUserModeUnderCr4Tsd()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.UserCode, a => a.rdtsc());
        m.EnterUserMode();
        var state = m.Cpu.GetState();
        state.Cr4 |= 1 << 2;
        m.Cpu.SetState(state);
        m.RunToHandler(13);
    }

    [Fact]
    public void CpuidAgreesWithTheMmuAndAdvertisesNothingUnimplemented()
    {
        using var m = new SystemMachine();
        (uint a, uint b, uint c, uint d) = Query(m, 0x8000_0008);
        Assert.Equal((uint)m.Mmu.Options.PhysicalAddressBits, a & 0xFF);
        Assert.Equal(48u, (a >> 8) & 0xFF);

        (_, _, c, d) = Query(m, 1);
        Assert.Equal(0u, c & ((1u << 3) | (1u << 17) | (1u << 31) | (1u << 28))); // MONITOR, PCID, hypervisor, AVX
        Assert.NotEqual(0u, d & (1u << 6));  // PAE
        Assert.NotEqual(0u, d & (1u << 13)); // PGE
        Assert.NotEqual(0u, d & (1u << 5));  // MSR

        (_, b, c, d) = Query(m, 7);
        Assert.Equal(0u, b & ((1u << 0) | (1u << 10))); // FSGSBASE, INVPCID
        Assert.Equal((1u << 7) | (1u << 20), b & ((1u << 7) | (1u << 20))); // SMEP, SMAP (docs/security.md)
        Assert.Equal(1u << 2, c & ((1u << 2) | (1u << 3) | (1u << 16) | (1u << 22))); // UMIP; no PKU, LA57, RDPID

        (_, _, _, d) = Query(m, 0x8000_0001);
        Assert.NotEqual(0u, d & (1u << 26)); // 1 GiB pages
        Assert.True(m.Mmu.Options.Supports1GiBPages);
    }

    [Fact]
    public void TheAmdProfileSaysItsReturnsCannotBePoisoned()
    {
        // An emulator does not speculate: BTC_NO and SRSO_NO keep Linux from putting a return thunk
        // on every kernel RET (retbleed, SRSO), as it does not under QEMU's qemu64 either.
        using var amd = new SystemMachine(model: CpuModel.ForVendor(CpuVendor.Amd));
        Assert.Equal(0x8000_0021u, Query(amd, 0x8000_0000).Item1);
        Assert.Equal(1u << 29, Query(amd, 0x8000_0008).Item2 & (1u << 29));
        Assert.Equal(1u << 29, Query(amd, 0x8000_0021).Item1 & (1u << 29));

        using var intel = new SystemMachine(model: CpuModel.ForVendor(CpuVendor.Intel));
        Assert.Equal(0x8000_0008u, Query(intel, 0x8000_0000).Item1);
        Assert.Equal(0u, Query(intel, 0x8000_0008).Item2);
    }

    private static (uint, uint, uint, uint) Query(SystemMachine m, uint leaf)
    {
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, leaf);
            a.xor(ecx, ecx);
            a.cpuid();
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        return ((uint)m.Cpu.GetRegister(0), (uint)m.Cpu.GetRegister(3), (uint)m.Cpu.GetRegister(1), (uint)m.Cpu.GetRegister(2));
    }

    /// <summary>A platform that answers one MSR, a fixed TSC, the KVM signature leaf and keeps CR8.</summary>
    private sealed class RecordingPlatform : ICpuPlatform
    {
        public const ulong Tsc = 0x1_2345_6789;
        private ulong _msr;

        public ulong Cr8 { get; private set; }

        public bool TryReadMsr(X86Cpu cpu, uint index, out ulong value)
        {
            value = _msr;
            return index == 0x4B56_4D01;
        }

        public bool TryWriteMsr(X86Cpu cpu, uint index, ulong value)
        {
            _msr = value;
            return index == 0x4B56_4D01;
        }

        public ulong ReadTsc() => Tsc;

        public void AdjustCpuid(X86Cpu cpu, uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
        {
            if (leaf == 0x4000_0000)
            {
                ebx = 0x4B4D_564B;
            }
        }

        public ulong ReadCr8(X86Cpu cpu) => Cr8;

        public void WriteCr8(X86Cpu cpu, ulong value) => Cr8 = value;
    }
}
