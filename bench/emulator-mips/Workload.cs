using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Bench.EmulatorMips;

/// <summary>
/// The benchmark guest: a CPU-bound loop mix (integer ALU, memory, data-dependent branches,
/// calls, string instructions, SSE) as a bare-metal multiboot image. QEMU boots it through its
/// 32-bit entry (which builds identity page tables and enters long mode); the emulator starts
/// directly at the 64-bit entry. Both end with OUT to the isa-debug-exit port, then HLT.
/// </summary>
internal static class Workload
{
    public const ulong LoadAddress = 0x10_0000;
    public const ulong StackTop = 0x9_0000;
    public const ulong Buffer = 0x40_0000;
    public const ulong Buffer2 = 0x40_2000;
    public const ushort DebugExitPort = 0xF4;

    // Boot data at fixed addresses after the code: GDT, GDT pointer, identity page tables.
    private const ulong DataArea = LoadAddress + 0x1_0000;
    private const ulong Gdt = DataArea;
    private const ulong GdtPointer = DataArea + 0x20;
    /// <summary>The image's identity page tables (the first 1 GiB in 2 MiB pages): CR3 for the 64-bit entry.</summary>
    public const ulong Pml4 = DataArea + 0x1000;
    private const ulong Pdpt = DataArea + 0x2000;
    private const ulong Pd = DataArea + 0x3000;
    private const int ImageSize = 0x1_4000;

    /// <summary>The image and the address of its 64-bit entry point.</summary>
    public static (byte[] Image, ulong Entry64) Build(int iterations, bool sse)
    {
        var a = new Assembler(64);
        Label entry64 = a.CreateLabel();

        // Multiboot header with the a.out kludge: load the flat image at LoadAddress.
        const uint magic = 0x1BAD_B002;
        const uint flags = 0x0001_0000;
        a.dd(magic);
        a.dd(flags);
        a.dd(unchecked(0u - magic - flags));
        a.dd((uint)LoadAddress);
        a.dd((uint)LoadAddress);
        a.dd(0);
        a.dd(0);
        a.dd((uint)LoadAddress + 0x40); // entry: the 32-bit code below
        a.db(new byte[0x20]);

        // 32-bit entry (QEMU only) at +0x40, assembled separately in 32-bit mode.
        a.db(new byte[0xC0]);

        a.Label(ref entry64);
        EmitWorkload(a, iterations, sse);

        var writer = new ImageWriter();
        AssemblerResult result = a.Assemble(writer, LoadAddress, BlockEncoderOptions.ReturnNewInstructionOffsets);
        byte[] code = writer.ToArray();
        if (code.Length > (int)(DataArea - LoadAddress))
        {
            throw new InvalidOperationException("workload code too long");
        }

        byte[] image = new byte[ImageSize];
        code.CopyTo(image, 0);
        ulong e64 = result.GetLabelRIP(entry64);
        byte[] boot = Assemble32(LoadAddress + 0x40, GdtPointer, Pml4, e64);
        if (boot.Length > 0xC0)
        {
            throw new InvalidOperationException("32-bit entry too long");
        }

        boot.CopyTo(image, 0x40);
        Patch64(image, Gdt + 8, 0x00AF_9A00_0000_FFFF);
        Patch64(image, Gdt + 16, 0x00CF_9200_0000_FFFF);
        BitConverter.TryWriteBytes(image.AsSpan((int)(GdtPointer - LoadAddress)), (ushort)23);
        Patch64(image, GdtPointer + 2, Gdt);
        Patch64(image, Pml4, Pdpt | 3);
        Patch64(image, Pdpt, Pd | 3);
        for (int i = 0; i < 512; i++)
        {
            Patch64(image, Pd + (ulong)(i * 8), ((ulong)i << 21) | 0x83);
        }

        return (image, e64);
    }

    private static byte[] Assemble32(ulong at, ulong gdtPointer, ulong pml4, ulong entry64)
    {
        var a = new Assembler(32);
        a.cli();
        a.lgdt(__dword_ptr[(uint)gdtPointer]);
        a.mov(eax, cr4);
        a.or(eax, (1 << 5) | (1 << 9) | (1 << 10)); // PAE, OSFXSR and OSXMMEXCPT (SSE raises #UD without OSFXSR)
        a.mov(cr4, eax);
        a.mov(eax, (uint)pml4);
        a.mov(cr3, eax);
        a.mov(ecx, 0xC000_0080);
        a.rdmsr();
        a.or(eax, 1 << 8);
        a.wrmsr();
        a.mov(eax, cr0);
        a.or(eax, unchecked((int)0x8000_0001));
        a.mov(cr0, eax);
        a.mov(ax, 0x10);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.jmp(0x08, (uint)entry64);
        var writer = new ImageWriter();
        a.Assemble(writer, at);
        return writer.ToArray();
    }

    private static void EmitWorkload(Assembler a, int iterations, bool sse)
    {
        Label outer = a.CreateLabel();
        Label hashLoop = a.CreateLabel();
        Label collatzOuter = a.CreateLabel();
        Label collatzLoop = a.CreateLabel();
        Label collatzOdd = a.CreateLabel();
        Label collatzNext = a.CreateLabel();
        Label collatzDone = a.CreateLabel();
        Label callLoop = a.CreateLabel();
        Label function = a.CreateLabel();
        Label fill = a.CreateLabel();
        Label sseLoop = a.CreateLabel();
        Label sseFound = a.CreateLabel();

        a.mov(rsp, StackTop);

        // Fill the buffer with a pattern once.
        a.mov(rdi, Buffer);
        a.mov(ecx, 1024);
        a.mov(rax, 0x0123_4567_89AB_CDEF);
        a.Label(ref fill);
        a.mov(__qword_ptr[rdi], rax);
        a.rol(rax, 7);
        a.add(rax, 0x1F);
        a.add(rdi, 8);
        a.dec(ecx);
        a.jnz(fill);

        a.mov(r15d, iterations);
        a.xor(r14d, r14d);
        a.Label(ref outer);

        // 1. Integer hash over 4 KiB: loads, ALU, rotates, multiplies.
        a.mov(rsi, Buffer);
        a.mov(ecx, 512);
        a.Label(ref hashLoop);
        a.mov(rax, __qword_ptr[rsi]);
        a.add(r14, rax);
        a.xor(r14, rcx);
        a.rol(r14, 13);
        a.imul(r14, r14, 0x2545F491);
        a.add(rsi, 8);
        a.dec(ecx);
        a.jnz(hashLoop);

        // 2. Data-dependent branches: Collatz step counts of 1..64.
        a.mov(r8d, 64);
        a.Label(ref collatzOuter);
        a.mov(rax, r8);
        a.Label(ref collatzLoop);
        a.cmp(rax, 1);
        a.je(collatzDone);
        a.test(al, 1);
        a.jnz(collatzOdd);
        a.shr(rax, 1);
        a.jmp(collatzNext);
        a.Label(ref collatzOdd);
        a.lea(rax, __qword_ptr[rax + rax * 2 + 1]);
        a.Label(ref collatzNext);
        a.inc(r13);
        a.jmp(collatzLoop);
        a.Label(ref collatzDone);
        a.dec(r8d);
        a.jnz(collatzOuter);

        // 3. Calls and returns with stack traffic.
        a.mov(ecx, 200);
        a.Label(ref callLoop);
        a.mov(rdi, rcx);
        a.call(function);
        a.add(r12, rax);
        a.dec(ecx);
        a.jnz(callLoop);

        // 4. String instructions: copy, fill, compare 4 KiB.
        a.mov(rsi, Buffer);
        a.mov(rdi, Buffer2);
        a.mov(ecx, 4096);
        a.rep.movsb();
        a.mov(rdi, Buffer2 + 4096);
        a.mov(ecx, 256);
        a.mov(rax, r14);
        a.rep.stosq();
        a.mov(rsi, Buffer);
        a.mov(rdi, Buffer2);
        a.mov(ecx, 4096);
        a.repe.cmpsb();

        // 5. SSE: strlen/memchr-style scan of 4 KiB with compares and mask extraction.
        if (sse)
        {
            a.mov(rsi, Buffer);
            a.mov(ecx, 256);
            a.pxor(xmm0, xmm0);
            a.pxor(xmm3, xmm3);
            a.Label(ref sseLoop);
            a.movdqa(xmm1, __xmmword_ptr[rsi]);
            a.paddq(xmm3, xmm1);
            a.movdqa(xmm2, xmm1);
            a.pcmpeqb(xmm2, xmm0);
            a.pmovmskb(eax, xmm2);
            a.test(eax, eax);
            a.jnz(sseFound);
            a.add(rsi, 16);
            a.dec(ecx);
            a.jnz(sseLoop);
            a.Label(ref sseFound);
            a.movq(rax, xmm3);
            a.add(r14, rax);
        }

        a.dec(r15d);
        a.jnz(outer);

        a.mov(al, 0);
        a.@out((byte)DebugExitPort, al);
        a.hlt();

        // A leaf function: a few ALU operations with a frame.
        a.Label(ref function);
        a.push(rbp);
        a.mov(rbp, rsp);
        a.mov(rax, rdi);
        a.imul(rax, rdi);
        a.xor(rax, 0x55);
        a.pop(rbp);
        a.ret();
    }

    private static void Patch64(byte[] image, ulong address, ulong value) =>
        BitConverter.TryWriteBytes(image.AsSpan((int)(address - LoadAddress)), value);

    private sealed class ImageWriter : CodeWriter
    {
        private readonly List<byte> _bytes = new();

        public override void WriteByte(byte value) => _bytes.Add(value);

        public byte[] ToArray() => _bytes.ToArray();
    }
}
