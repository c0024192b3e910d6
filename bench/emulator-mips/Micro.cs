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
        Measure("memory alu loop", a =>
        {
            Label l = a.CreateLabel();
            a.mov(ecx, 20_000_000);
            a.mov(rsi, 0x20_0000);
            a.Label(ref l);
            a.add(__qword_ptr[rsi], rcx);
            a.or(rax, __qword_ptr[rsi + 8]);
            a.and(__dword_ptr[rsi + 16], 0x7FFF);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
        });
        Measure("push/pop/call/ret loop", a =>
        {
            Label l = a.CreateLabel();
            Label f = a.CreateLabel();
            a.mov(ecx, 10_000_000);
            a.Label(ref l);
            a.push(rcx);
            a.push(rax);
            a.call(f);
            a.pop(rax);
            a.pop(rdx);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
            a.Label(ref f);
            a.add(rax, rdx);
            a.ret();
        });

        // Guest page faults: a load from the unmapped second GiB, taken through the IDT to a
        // handler that steps over the 3-byte load (the cost of a #PF from raise to IRETQ).
        Measure("#PF loop", a =>
        {
            Label l = a.CreateLabel();
            a.mov(ecx, 200_000);
            a.mov(rsi, 0x4000_0000);
            a.Label(ref l);
            a.mov(rax, __qword_ptr[rsi]);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
        }, withIdt: true);
    }

    private const ulong HandlerAddress = 0x18_0000;

    private static void Measure(string name, Action<Assembler> build, bool withIdt = false)
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
        if (withIdt)
        {
            // GDT: null, 64-bit code (0x08), data (0x10); IDT vector 14 -> the handler.
            memory.Write<ulong>(0x3008, 0x00AF_9A00_0000_FFFF);
            memory.Write<ulong>(0x3010, 0x00CF_9200_0000_FFFF);
            ulong gate = 0x4000 + (14 * 16);
            memory.Write<ushort>(gate, unchecked((ushort)HandlerAddress));
            memory.Write<ushort>(gate + 2, 0x08);
            memory.Write<ushort>(gate + 4, 0x8E00);
            memory.Write<ushort>(gate + 6, (ushort)(HandlerAddress >> 16));
            memory.Write<uint>(gate + 8, (uint)(HandlerAddress >> 32));
            var handler = new Assembler(64);
            handler.add(rsp, 8);                    // the error code
            handler.add(__qword_ptr[rsp], 3);       // past the faulting load
            handler.iretq();
            using var code = new MemoryStream();
            handler.Assemble(new StreamCodeWriter(code), HandlerAddress);
            memory.Write(HandlerAddress, code.ToArray());
        }
        for (int round = 0; round < 2; round++)
        {
            var cpu = new X86Cpu(new PhysicalMemory(memory)) { DeliverExceptions = withIdt };
            cpu.SetState(new VcpuState
            {
                Gdt = new DescriptorTable(0x3000, 0x17),
                Idt = new DescriptorTable(0x4000, 0xFFF),
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
