using System.Diagnostics;
using Iced.Intel;
using SharpVisor.Emulator;
using SharpVisor.Machine;
using SharpVisor.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Bench.EmulatorMips;

/// <summary>Micro-benchmarks of single loop shapes (for tuning the interpreter).</summary>
internal static class Micro
{
    public static void Run()
    {
        Measure("add/dec/jnz", a =>
        {
            Label l = a.CreateLabel();
            a.mov(ecx, 50_000_000);
            a.Label(ref l);
            a.add(rax, rcx);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
        });
        Measure("8 alu + loop", a =>
        {
            Label l = a.CreateLabel();
            a.mov(ecx, 20_000_000);
            a.Label(ref l);
            a.add(rax, rcx);
            a.xor(rbx, rax);
            a.sub(rdx, rbx);
            a.and(rsi, rdx);
            a.or(rdi, rax);
            a.add(r8, rdi);
            a.shl(r9, 3);
            a.mov(r10, r9);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
        });
        Measure("load/store loop", a =>
        {
            Label l = a.CreateLabel();
            a.mov(ecx, 20_000_000);
            a.mov(rsi, 0x20_0000);
            a.Label(ref l);
            a.mov(rax, __qword_ptr[rsi]);
            a.add(rax, rcx);
            a.mov(__qword_ptr[rsi + 8], rax);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
        });
    }

    private static void Measure(string name, Action<Assembler> build)
    {
        var asm = new Assembler(64);
        build(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0x10_0000);
        using GuestMemory memory = GuestMemory.CreateRam(16UL << 20);
        memory.Write(0x10_0000, stream.ToArray());

        // Identity map of the first 1 GiB (one 1 GiB page) for long mode.
        memory.Write<ulong>(0x1000, 0x2000 | 0x3);
        memory.Write<ulong>(0x2000, 0x83);
        for (int round = 0; round < 2; round++)
        {
            var cpu = new X86Cpu(new PhysicalMemory(memory));
            cpu.SetState(new VcpuState
            {
                Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging,
                Cr3 = 0x1000,
                Cr4 = VcpuState.Cr4Pae,
                Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive,
                Cs = SegmentRegister.Flat(0x08, 0xB, longMode: true, defaultBig: false),
                Ss = SegmentRegister.Flat(0x10, 0x3, false, true),
                Rip = 0x10_0000,
                Rsp = 0x8_0000,
                Rflags = 2,
            });
            var clock = Stopwatch.StartNew();
            double cpuStart = CpuTime.Thread();
            CpuRunResult r = cpu.Run();
            clock.Stop();
            double cpuTime = CpuTime.Thread() - cpuStart;
            Console.WriteLine($"{name}: {r.Reason}, {cpu.InstructionsExecuted / clock.Elapsed.TotalSeconds / 1e6:F1} MIPS wall, {cpu.InstructionsExecuted / cpuTime / 1e6:F1} MIPS cpu, {cpu.BlocksDecoded} blocks decoded");
        }
    }
}
