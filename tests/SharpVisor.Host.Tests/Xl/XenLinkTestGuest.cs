using System.Buffers.Binary;
using System.Text;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// Two tiny Xen PVH kernels (ELF64 with XEN_ELFNOTE_PHYS32_ENTRY), assembled with Iced, for the
/// inter-domain test: the granter A and the back end B. Each enters at the PVH entry in 32-bit
/// mode, switches to long mode with its own tables, and reads its peer's domid from the first
/// character of its command line. They speak through console_io, one line per step.
/// A maps shared_info and a grant frame, takes events on a callback vector, grants B a read-only
/// page holding "QUESTION-42" (ref 10) and a writable page (ref 11), allocates an unbound port for
/// B and prints it; on the upcall it checks B's answer at offset 16 of the writable page; then it
/// polls EVTCHNOP_status until the port is unbound (B gone) and shows it still runs.
/// B finds A's port by trying bind_interdomain on A's ports, grant-copies the question, copies its
/// answer into ref 11, tries the hostile copies (each status printed), and sends on the port.
/// </summary>
internal static class XenLinkTestGuest
{
    private const ulong LoadAddress = 0x100000;
    private const ulong GdtAddress = 0x100200;
    private const ulong GdtrAddress = 0x100240;
    private const ulong Code64 = 0x101000;
    private const ulong Pml4 = 0x105000;
    private const ulong Pdpt = 0x106000;
    private const ulong PageDirectory = 0x107000;
    private const ulong Data = 0x108000;
    private const ulong StartInfoSave = 0x109F00;
    private const ulong PeerSave = 0x109F08;
    private const ulong PortSave = 0x109F10;
    private const ulong UpcallCount = 0x109F18;
    private const ulong IdtrAddress = 0x109F20;
    private const ulong NumberEnd = 0x109FF0;
    private const ulong SharedInfo = 0x10A000;
    private const ulong GrantFrame = 0x10B000;
    private const ulong PageOne = 0x10C000;
    private const ulong PageTwo = 0x10D000;
    private const ulong Scratch = 0x10E000;
    private const ulong Idt = 0x10F000;
    private const ulong StackTop = 0x118000;
    private const ulong End = 0x118000;
    private const ulong MapTarget = 0x200000;
    private const ulong ReadOnlyTarget = 0x201000;
    private const ulong KeptTarget = 0x202000;
    private const ulong MapHandle = Scratch + 0x900;
    private const ulong ReadOnlyHandle = Scratch + 0x908;
    private const byte Vector = 0xF3;
    private const ushort DomidSelf = 0x7FF0;

    private const int MemoryOp = 12;
    private const int ConsoleIo = 18;
    private const int GrantTableOp = 20;
    private const int EventChannelOp = 32;
    private const int HvmOp = 34;

    public static byte[] Granter() => Build(BuildGranter);

    public static byte[] Backend() => Build(BuildBackend);

    private static byte[] Build(Action<Program> body)
    {
        byte[] image = new byte[(int)(End - LoadAddress)];
        WriteEntry(image);
        var program = new Program(image);
        var a = program.A;
        a.mov(ax, 0x10);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(rsp, StackTop);
        a.mov(eax, __dword_ptr[StartInfoSave]);
        a.mov(rax, __qword_ptr[rax + 24]);    // hvm_start_info.cmdline_paddr
        a.movzx(eax, __byte_ptr[rax]);
        a.sub(eax, '0');
        a.mov(__qword_ptr[PeerSave], rax);

        // shared_info at our frame: add_to_physmap { DOMID_SELF, 0, XENMAPSPACE_shared_info, 0, gpfn }.
        program.AddToPhysmap(0, SharedInfo);
        body(program);
        program.HaltForever();
        program.Finish();

        // Page tables: the first GiB identity-mapped in 2 MiB pages.
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)(Pml4 - LoadAddress)), Pdpt | 3);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)(Pdpt - LoadAddress)), PageDirectory | 3);
        for (ulong i = 0; i < 512; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)(PageDirectory - LoadAddress + (i * 8))), (i << 21) | 0x83);
        }

        // GDT: null, 64-bit code 0x08, data 0x10; the 32-bit lgdt operand.
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)(GdtAddress - LoadAddress + 8)), 0x00AF_9B00_0000_FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)(GdtAddress - LoadAddress + 16)), 0x00CF_9300_0000_FFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)(GdtrAddress - LoadAddress)), 23);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan((int)(GdtrAddress - LoadAddress + 2)), (uint)GdtAddress);
        return Elf(image);
    }

    /// <summary>The PVH entry: 32-bit protected mode, paging off, EBX = hvm_start_info. Into long mode.</summary>
    private static void WriteEntry(byte[] image)
    {
        var a = new Assembler(32);
        a.mov(__dword_ptr[StartInfoSave], ebx);
        a.mov(eax, cr4);
        a.or(eax, 0x20);                  // PAE
        a.mov(cr4, eax);
        a.mov(eax, (uint)Pml4);
        a.mov(cr3, eax);
        a.mov(ecx, 0xC000_0080);          // EFER.LME
        a.rdmsr();
        a.or(eax, 0x100);
        a.wrmsr();
        a.mov(eax, cr0);
        a.or(eax, 0x8000_0001);           // PG | PE
        a.mov(cr0, eax);
        a.lgdt(__fword_ptr[GdtrAddress]);
        a.push(0x08);
        a.push((uint)Code64);
        a.retf();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), LoadAddress);
        stream.ToArray().CopyTo(image, 0);
    }

    private static void BuildGranter(Program p)
    {
        var a = p.A;

        // The callback vector's IDT gate and HVM_PARAM_CALLBACK_IRQ = vector (type 2).
        Label handler = a.CreateLabel();
        a.lea(rax, __[handler]);
        a.mov(rdi, Idt + (Vector * 16UL));
        a.mov(__word_ptr[rdi], ax);
        a.mov(__word_ptr[rdi + 2], 0x08);
        a.mov(__word_ptr[rdi + 4], 0x8E00);
        a.shr(rax, 16);
        a.mov(__word_ptr[rdi + 6], ax);
        a.mov(__qword_ptr[rdi + 8], 0);
        a.mov(__word_ptr[IdtrAddress], 0xFFF);
        a.mov(rax, Idt);
        a.mov(__qword_ptr[IdtrAddress + 2], rax);
        a.lidt(__[IdtrAddress]);
        a.mov(rdi, Scratch);
        a.mov(__word_ptr[rdi], DomidSelf);
        a.mov(__dword_ptr[rdi + 4], 0);   // HVM_PARAM_CALLBACK_IRQ
        a.mov(rax, Vector | (2UL << 56));
        a.mov(__qword_ptr[rdi + 8], rax);
        p.Hypercall(HvmOp, 0, Scratch);
        p.CheckZero("set callback vector");

        // The grant frame, and the two grants to the peer: the question read-only, the answer page writable.
        p.AddToPhysmap(1, GrantFrame);
        p.Place(PageOne, "QUESTION-42\0\0\0\0\0");
        a.mov(rax, __qword_ptr[PeerSave]);
        a.mov(__dword_ptr[GrantFrame + (10 * 8) + 4], (uint)(PageOne >> 12));
        a.mov(__word_ptr[GrantFrame + (10 * 8) + 2], ax);
        a.mov(__word_ptr[GrantFrame + (10 * 8)], 1 | 4);          // GTF_permit_access | GTF_readonly
        a.mov(__dword_ptr[GrantFrame + (11 * 8) + 4], (uint)(PageTwo >> 12));
        a.mov(__word_ptr[GrantFrame + (11 * 8) + 2], ax);
        a.mov(__word_ptr[GrantFrame + (11 * 8)], 1);              // GTF_permit_access

        // alloc_unbound { DOMID_SELF, remote = peer } → port.
        a.mov(rdi, Scratch);
        a.mov(__word_ptr[rdi], DomidSelf);
        a.mov(__word_ptr[rdi + 2], ax);
        p.Hypercall(EventChannelOp, 6, Scratch);
        p.CheckZero("alloc_unbound");
        a.mov(eax, __dword_ptr[Scratch + 4]);
        a.mov(__qword_ptr[PortSave], rax);
        p.Print("A: peer ");
        p.PrintNumber(__qword_ptr[PeerSave]);
        p.Print(" port ");
        p.PrintNumber(__qword_ptr[PortSave]);
        p.Print(" granted\n");

        // Wait for the upcall.
        Label wait = a.CreateLabel();
        a.sti();
        a.Label(ref wait);
        a.hlt();
        a.cmp(__qword_ptr[UpcallCount], 0);
        a.je(wait);
        a.cli();
        a.mov(rax, __qword_ptr[PortSave]);
        a.mov(rcx, __qword_ptr[SharedInfo + 2048]);   // evtchn_pending[0]
        a.bt(rcx, rax);
        a.setc(al);
        a.movzx(eax, al);
        a.mov(__qword_ptr[Scratch + 0x800], rax);
        p.Print("A: upcall, port pending ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print("\n");
        Label bad = a.CreateLabel();
        Label answered = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("ANSWER-4"u8));
        a.cmp(__qword_ptr[PageTwo + 16], rax);
        a.jne(bad);
        p.Print("A: ANSWER-OK\n");
        a.jmp(answered);
        a.Label(ref bad);
        p.Print("A: ANSWER-BAD\n");
        a.Label(ref answered);
        a.nop();

        // B wrote through its map of ref 11 and scribbled on its read-only map of ref 10; it still holds a map of ref 11.
        Label writeMissing = a.CreateLabel();
        Label writeChecked = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("MAPPED-W"u8));
        a.cmp(__qword_ptr[PageTwo + 32], rax);
        a.jne(writeMissing);
        p.Print("A: MAP-WRITE-SEEN\n");
        a.jmp(writeChecked);
        a.Label(ref writeMissing);
        p.Print("A: FAIL map write missing\n");
        a.Label(ref writeChecked);
        Label scribbled = a.CreateLabel();
        Label intact = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("QUESTION"u8));
        a.cmp(__qword_ptr[PageOne], rax);
        a.jne(scribbled);
        p.Print("A: READONLY-INTACT\n");
        a.jmp(intact);
        a.Label(ref scribbled);
        p.Print("A: FAIL read-only grant written\n");
        a.Label(ref intact);
        a.movzx(eax, __word_ptr[GrantFrame + (11 * 8)]);
        a.and(eax, 0x18);                                         // GTF_reading | GTF_writing
        a.mov(__qword_ptr[Scratch + 0x800], rax);
        p.Print("A: REF11-IN-USE ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print("\n");

        // Poll the port's status until the peer is gone (state 1, unbound).
        Label poll = a.CreateLabel();
        Label spin = a.CreateLabel();
        Label gone = a.CreateLabel();
        a.Label(ref poll);
        a.mov(rdi, Scratch);
        a.mov(__word_ptr[rdi], DomidSelf);
        a.mov(rax, __qword_ptr[PortSave]);
        a.mov(__dword_ptr[rdi + 4], eax);
        p.Hypercall(EventChannelOp, 5, Scratch);
        p.CheckZero("status");
        a.cmp(__dword_ptr[Scratch + 8], 1);
        a.je(gone);
        a.mov(ecx, 2_000_000);
        a.Label(ref spin);
        a.pause();
        a.dec(ecx);
        a.jnz(spin);
        a.jmp(poll);
        a.Label(ref gone);
        a.movzx(eax, __word_ptr[Scratch + 16]);
        a.mov(__qword_ptr[Scratch + 0x800], rax);
        p.Print("A: PEER-GONE port unbound for ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print("\n");
        a.movzx(eax, __word_ptr[GrantFrame + (11 * 8)]);
        a.and(eax, 0x18);
        a.mov(__qword_ptr[Scratch + 0x800], rax);
        p.Print("A: REF11-AFTER-PEER-GONE ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print("\n");

        // Still a working domain: a new port for the same peer.
        a.mov(rdi, Scratch);
        a.mov(__word_ptr[rdi], DomidSelf);
        a.mov(rax, __qword_ptr[PeerSave]);
        a.mov(__word_ptr[rdi + 2], ax);
        p.Hypercall(EventChannelOp, 6, Scratch);
        p.CheckZero("alloc_unbound again");
        a.mov(eax, __dword_ptr[Scratch + 4]);
        a.mov(__qword_ptr[Scratch + 0x800], rax);
        p.Print("A: STILL-RUNNING new port ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print("\n");
        p.HaltForever();

        // The upcall: lower evtchn_upcall_pending (vCPU 0's vcpu_info is at the start of shared_info), count it.
        a.Label(ref handler);
        a.mov(__byte_ptr[SharedInfo], 0);
        a.inc(__qword_ptr[UpcallCount]);
        a.iretq();
    }

    private static void BuildBackend(Program p)
    {
        var a = p.A;

        // Find the port the peer left unbound for us: bind_interdomain on its ports 1..63.
        Label probe = a.CreateLabel();
        Label bound = a.CreateLabel();
        a.mov(r12d, 1);
        a.Label(ref probe);
        a.mov(rdi, Scratch);
        a.mov(rax, __qword_ptr[PeerSave]);
        a.mov(__word_ptr[rdi], ax);
        a.mov(__dword_ptr[rdi + 4], r12d);
        p.Hypercall(EventChannelOp, 0, Scratch);
        a.test(rax, rax);
        a.jz(bound);
        a.inc(r12d);
        a.cmp(r12d, 64);
        a.jb(probe);
        p.Print("B: FAIL no port to bind\n");
        p.HaltForever();
        a.Label(ref bound);
        a.mov(__qword_ptr[Scratch + 0x800], r12);
        a.mov(eax, __dword_ptr[Scratch + 8]);
        a.mov(__qword_ptr[PortSave], rax);
        p.Print("B: bound to port ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print(" local ");
        p.PrintNumber(__qword_ptr[PortSave]);
        p.Print("\n");

        // The question: from the peer's ref 10 into our first page.
        p.Copy("B: copy-from ", sourceRef: 10, sourcePeer: true, sourceOffset: 0, destRef: PageOne >> 12, destPeer: false, destOffset: 0, length: 16, flags: 1);
        Label seen = a.CreateLabel();
        Label next = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("QUESTION"u8));
        a.cmp(__qword_ptr[PageOne], rax);
        a.je(seen);
        p.Print("B: QUESTION-MISSING\n");
        a.jmp(next);
        a.Label(ref seen);
        p.Print("B: QUESTION-SEEN\n");
        a.Label(ref next);

        // The answer: our second page into the peer's ref 11 at offset 16.
        p.Place(PageTwo, "ANSWER-42\0\0\0\0\0\0\0");
        p.Copy("B: copy-to ", sourceRef: PageTwo >> 12, sourcePeer: false, sourceOffset: 0, destRef: 11, destPeer: true, destOffset: 16, length: 16, flags: 2);

        // Hostile copies: each must fail with its GNTST status, and we keep running.
        p.Copy("B: HOSTILE ungranted ", sourceRef: 12, sourcePeer: true, sourceOffset: 0, destRef: PageOne >> 12, destPeer: false, destOffset: 0, length: 8, flags: 1);
        p.Copy("B: HOSTILE readonly-write ", sourceRef: PageTwo >> 12, sourcePeer: false, sourceOffset: 0, destRef: 10, destPeer: true, destOffset: 0, length: 8, flags: 2);
        p.Copy("B: HOSTILE bad-ref ", sourceRef: 100_000, sourcePeer: true, sourceOffset: 0, destRef: PageOne >> 12, destPeer: false, destOffset: 0, length: 8, flags: 1);
        p.Copy("B: HOSTILE out-of-range ", sourceRef: 10, sourcePeer: true, sourceOffset: 4090, destRef: PageOne >> 12, destPeer: false, destOffset: 0, length: 16, flags: 1);
        p.Copy("B: HOSTILE foreign-frame ", sourceRef: PageOne >> 12, sourcePeer: true, sourceOffset: 0, destRef: PageOne >> 12, destPeer: false, destOffset: 0, length: 8, flags: 0);

        // Grant maps (GNTTABOP_map_grant_ref): the peer's pages at our own guest-physical pages.
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("B-OWN-PG"u8));
        a.mov(__qword_ptr[MapTarget], rax);
        p.MapGrant("B: MAP writable ", MapTarget, flags: 2, reference: 11, peer: true, MapHandle);
        Label answerSeen = a.CreateLabel();
        Label answerChecked = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("ANSWER-4"u8));
        a.cmp(__qword_ptr[MapTarget + 16], rax);
        a.je(answerSeen);
        p.Print("B: FAIL the map does not show the peer's page\n");
        a.jmp(answerChecked);
        a.Label(ref answerSeen);
        p.Print("B: MAP-READ-OK\n");
        a.Label(ref answerChecked);
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("MAPPED-W"u8));
        a.mov(__qword_ptr[MapTarget + 32], rax);

        p.MapGrant("B: MAP read-only ", ReadOnlyTarget, flags: 2 | 4, reference: 10, peer: true, ReadOnlyHandle);
        Label questionSeen = a.CreateLabel();
        Label questionChecked = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("QUESTION"u8));
        a.cmp(__qword_ptr[ReadOnlyTarget], rax);
        a.je(questionSeen);
        p.Print("B: FAIL the read-only map does not show the question\n");
        a.jmp(questionChecked);
        a.Label(ref questionSeen);
        p.Print("B: ROMAP-READ-OK\n");
        a.Label(ref questionChecked);
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("SCRIBBLE"u8));
        a.mov(__qword_ptr[ReadOnlyTarget], rax);
        p.Print("B: ROMAP-WRITE-SURVIVED\n");

        // Hostile maps: each its GNTST status, and we keep running.
        p.MapGrant("B: HOSTILE map-readonly-writable ", KeptTarget, flags: 2, reference: 10, peer: true, Scratch + 0x910);
        p.MapGrant("B: HOSTILE map-ungranted ", KeptTarget, flags: 2, reference: 12, peer: true, Scratch + 0x910);
        p.MapGrant("B: HOSTILE map-bad-ref ", KeptTarget, flags: 2, reference: 100_000, peer: true, Scratch + 0x910);
        p.MapGrant("B: HOSTILE map-no-domain ", KeptTarget, flags: 2, reference: 11, peer: false, Scratch + 0x910);
        p.MapGrant("B: HOSTILE map-outside-ram ", 0xC000_0000, flags: 2, reference: 11, peer: true, Scratch + 0x910);
        p.MapGrant("B: HOSTILE map-over-map ", MapTarget, flags: 2, reference: 11, peer: true, Scratch + 0x910);
        p.MapGrant("B: HOSTILE map-no-flags ", KeptTarget, flags: 0, reference: 11, peer: true, Scratch + 0x910);
        a.mov(__qword_ptr[Scratch + 0x918], 9999);
        p.UnmapGrant("B: HOSTILE unmap-bad-handle ", MapTarget, Scratch + 0x918);

        // Unmap: our own page is back; a second unmap of the handle is refused.
        p.UnmapGrant("B: UNMAP read-only ", ReadOnlyTarget, ReadOnlyHandle);
        p.UnmapGrant("B: UNMAP writable ", MapTarget, MapHandle);
        p.UnmapGrant("B: UNMAP again ", MapTarget, MapHandle);
        Label ownBack = a.CreateLabel();
        Label ownChecked = a.CreateLabel();
        a.mov(rax, BinaryPrimitives.ReadUInt64LittleEndian("B-OWN-PG"u8));
        a.cmp(__qword_ptr[MapTarget], rax);
        a.je(ownBack);
        p.Print("B: FAIL own page not back\n");
        a.jmp(ownChecked);
        a.Label(ref ownBack);
        p.Print("B: OWN-PAGE-BACK\n");
        a.Label(ref ownChecked);

        // One map stays until we die: the peer sees it in use, then released by the link.
        p.MapGrant("B: MAP kept ", KeptTarget, flags: 2, reference: 11, peer: true, Scratch + 0x910);

        // Notify the peer.
        a.mov(rax, __qword_ptr[PortSave]);
        a.mov(__dword_ptr[Scratch], eax);
        p.Hypercall(EventChannelOp, 4, Scratch);
        a.mov(__qword_ptr[Scratch + 0x800], rax);
        p.Print("B: SENT ");
        p.PrintNumber(__qword_ptr[Scratch + 0x800]);
        p.Print("\n");
    }

    /// <summary>The image as an ELF64: one PT_LOAD at <see cref="LoadAddress"/> and the PVH entry note.</summary>
    private static byte[] Elf(byte[] image)
    {
        const int NoteOffset = 0x200;
        const int LoadOffset = 0x1000;
        byte[] elf = new byte[LoadOffset + image.Length];
        Span<byte> h = elf;
        "\x7F"u8.CopyTo(h);
        "ELF"u8.CopyTo(h[1..]);
        h[4] = 2;   // ELFCLASS64
        h[5] = 1;   // little endian
        h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], 2);      // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], 62);     // x86-64
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], 64);     // program headers
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(h[54..], 56);
        BinaryPrimitives.WriteUInt16LittleEndian(h[56..], 2);

        Span<byte> load = h[64..];
        BinaryPrimitives.WriteUInt32LittleEndian(load, 1);         // PT_LOAD
        BinaryPrimitives.WriteUInt32LittleEndian(load[4..], 7);
        BinaryPrimitives.WriteUInt64LittleEndian(load[8..], LoadOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(load[16..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(load[24..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(load[32..], (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[40..], (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[48..], 0x1000);

        Span<byte> note = h[(64 + 56)..];
        BinaryPrimitives.WriteUInt32LittleEndian(note, 4);         // PT_NOTE
        BinaryPrimitives.WriteUInt32LittleEndian(note[4..], 4);
        BinaryPrimitives.WriteUInt64LittleEndian(note[8..], NoteOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(note[32..], 20);
        BinaryPrimitives.WriteUInt64LittleEndian(note[40..], 20);
        BinaryPrimitives.WriteUInt64LittleEndian(note[48..], 4);

        Span<byte> xen = h[NoteOffset..];
        BinaryPrimitives.WriteUInt32LittleEndian(xen, 4);          // "Xen\0"
        BinaryPrimitives.WriteUInt32LittleEndian(xen[4..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(xen[8..], 18);    // XEN_ELFNOTE_PHYS32_ENTRY
        "Xen\0"u8.CopyTo(xen[12..]);
        BinaryPrimitives.WriteUInt32LittleEndian(xen[16..], (uint)LoadAddress);
        image.CopyTo(elf, LoadOffset);
        return elf;
    }

    /// <summary>The 64-bit program being assembled, its strings and its subroutines.</summary>
    private sealed class Program
    {
        private readonly byte[] _image;
        private readonly Label _printNumber;
        private ulong _nextString = Data;

        public Program(byte[] image)
        {
            _image = image;
            A = new Assembler(64);
            _printNumber = A.CreateLabel();
        }

        public Assembler A { get; }

        public void Hypercall(int op, ulong first, ulong second, ulong third = 0)
        {
            A.mov(rdi, first);
            A.mov(rsi, second);
            A.mov(rdx, third);
            A.mov(eax, op);
            A.vmcall();
        }

        public void AddToPhysmap(uint space, ulong page)
        {
            A.mov(rdi, Scratch);
            A.mov(__word_ptr[rdi], DomidSelf);
            A.mov(__word_ptr[rdi + 2], 0);
            A.mov(__dword_ptr[rdi + 4], space);
            A.mov(__qword_ptr[rdi + 8], 0);
            A.mov(rax, page >> 12);
            A.mov(__qword_ptr[rdi + 16], rax);
            Hypercall(MemoryOp, 7, Scratch);
            CheckZero($"add_to_physmap space {space}");
        }

        /// <summary>Stops with a line naming <paramref name="step"/> when RAX is not 0.</summary>
        public void CheckZero(string step)
        {
            Label ok = A.CreateLabel();
            A.test(rax, rax);
            A.jz(ok);
            A.mov(__qword_ptr[Scratch + 0x808], rax);
            Print($"FAIL {step}: ");
            PrintNumber(__qword_ptr[Scratch + 0x808]);
            Print("\n");
            HaltForever();
            A.Label(ref ok);
        }

        /// <summary>One gnttab_copy at Scratch; its status is printed after <paramref name="what"/>.</summary>
        public void Copy(string what, ulong sourceRef, bool sourcePeer, ushort sourceOffset, ulong destRef, bool destPeer, ushort destOffset, ushort length, ushort flags)
        {
            A.mov(rdi, Scratch);
            A.mov(rax, sourceRef);
            A.mov(__qword_ptr[rdi], rax);
            A.mov(rax, __qword_ptr[PeerSave]);
            A.mov(__word_ptr[rdi + 8], ax);
            if (!sourcePeer)
            {
                A.mov(__word_ptr[rdi + 8], DomidSelf);
            }

            A.mov(__word_ptr[rdi + 10], sourceOffset);
            A.mov(rcx, destRef);
            A.mov(__qword_ptr[rdi + 16], rcx);
            A.mov(__word_ptr[rdi + 24], ax);
            if (!destPeer)
            {
                A.mov(__word_ptr[rdi + 24], DomidSelf);
            }

            A.mov(__word_ptr[rdi + 26], destOffset);
            A.mov(__word_ptr[rdi + 32], length);
            A.mov(__word_ptr[rdi + 34], flags);
            A.mov(__word_ptr[rdi + 36], 99);
            Hypercall(GrantTableOp, 5, Scratch, 1);
            CheckZero("grant_table_op copy");
            A.movsx(rax, __word_ptr[Scratch + 36]);
            A.mov(__qword_ptr[Scratch + 0x800], rax);
            Print(what + "status ");
            PrintNumber(__qword_ptr[Scratch + 0x800]);
            Print("\n");
        }

        /// <summary>One gnttab_map_grant_ref at Scratch (the peer's grant, or domain 9's); its status is printed after <paramref name="what"/>, the handle kept at <paramref name="handleSlot"/>.</summary>
        public void MapGrant(string what, ulong hostAddress, uint flags, uint reference, bool peer, ulong handleSlot)
        {
            A.mov(rdi, Scratch);
            A.mov(rax, hostAddress);
            A.mov(__qword_ptr[rdi], rax);
            A.mov(__dword_ptr[rdi + 8], flags);
            A.mov(__dword_ptr[rdi + 12], reference);
            A.mov(rax, __qword_ptr[PeerSave]);
            A.mov(__word_ptr[rdi + 16], ax);
            if (!peer)
            {
                A.mov(__word_ptr[rdi + 16], 9);
            }

            A.mov(__word_ptr[rdi + 18], 99);
            Hypercall(GrantTableOp, 0, Scratch, 1);
            CheckZero("grant_table_op map");
            A.mov(eax, __dword_ptr[Scratch + 20]);
            A.mov(__qword_ptr[handleSlot], rax);
            A.movsx(rax, __word_ptr[Scratch + 18]);
            A.mov(__qword_ptr[Scratch + 0x800], rax);
            Print(what + "status ");
            PrintNumber(__qword_ptr[Scratch + 0x800]);
            Print("\n");
        }

        /// <summary>One gnttab_unmap_grant_ref of the handle kept at <paramref name="handleSlot"/>; its status is printed.</summary>
        public void UnmapGrant(string what, ulong hostAddress, ulong handleSlot)
        {
            A.mov(rdi, Scratch);
            A.mov(rax, hostAddress);
            A.mov(__qword_ptr[rdi], rax);
            A.mov(__qword_ptr[rdi + 8], 0);
            A.mov(rax, __qword_ptr[handleSlot]);
            A.mov(__dword_ptr[rdi + 16], eax);
            A.mov(__word_ptr[rdi + 20], 99);
            Hypercall(GrantTableOp, 1, Scratch, 1);
            CheckZero("grant_table_op unmap");
            A.movsx(rax, __word_ptr[Scratch + 20]);
            A.mov(__qword_ptr[Scratch + 0x800], rax);
            Print(what + "status ");
            PrintNumber(__qword_ptr[Scratch + 0x800]);
            Print("\n");
        }

        /// <summary>Puts <paramref name="text"/> into the image at <paramref name="address"/> (static data).</summary>
        public void Place(ulong address, string text) => Encoding.ASCII.GetBytes(text).CopyTo(_image, (int)(address - LoadAddress));

        public void Print(string text)
        {
            byte[] bytes = Encoding.ASCII.GetBytes(text);
            ulong address = _nextString;
            _nextString += (ulong)bytes.Length;
            if (_nextString > StartInfoSave)
            {
                throw new InvalidOperationException("the test guest's strings do not fit");
            }

            bytes.CopyTo(_image, (int)(address - LoadAddress));
            Hypercall(ConsoleIo, 0, (ulong)bytes.Length, address);
        }

        public void PrintNumber(AssemblerMemoryOperand value)
        {
            A.mov(rax, value);
            A.call(_printNumber);
        }

        /// <summary>Sleeps for good but stays a live domain (HLT with IF=0 and nothing to wake it would stop the machine).</summary>
        public void HaltForever()
        {
            Label halt = A.CreateLabel();
            A.sti();
            A.Label(ref halt);
            A.hlt();
            A.jmp(halt);
        }

        /// <summary>Emits the subroutines and assembles everything at <see cref="Code64"/>.</summary>
        public void Finish()
        {
            // print_number: RAX as a signed decimal through console_io.
            Label positive = A.CreateLabel();
            Label digit = A.CreateLabel();
            Label unsigned = A.CreateLabel();
            Label printNumber = _printNumber;
            A.Label(ref printNumber);
            A.mov(rdi, NumberEnd);
            A.xor(ecx, ecx);
            A.test(rax, rax);
            A.jns(positive);
            A.neg(rax);
            A.mov(ecx, 1);
            A.Label(ref positive);
            A.mov(ebx, 10);
            A.Label(ref digit);
            A.xor(edx, edx);
            A.div(rbx);
            A.add(dl, (byte)'0');
            A.dec(rdi);
            A.mov(__byte_ptr[rdi], dl);
            A.test(rax, rax);
            A.jnz(digit);
            A.test(ecx, ecx);
            A.jz(unsigned);
            A.dec(rdi);
            A.mov(__byte_ptr[rdi], (byte)'-');
            A.Label(ref unsigned);
            A.mov(rdx, rdi);
            A.mov(rsi, NumberEnd);
            A.sub(rsi, rdi);
            A.xor(edi, edi);
            A.mov(eax, ConsoleIo);
            A.vmcall();
            A.ret();

            using var stream = new MemoryStream();
            A.Assemble(new StreamCodeWriter(stream), Code64);
            byte[] code = stream.ToArray();
            if (Code64 + (ulong)code.Length > Pml4)
            {
                throw new InvalidOperationException("the test guest's code does not fit");
            }

            code.CopyTo(_image, (int)(Code64 - LoadAddress));
        }
    }
}
