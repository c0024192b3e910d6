using System.Buffers.Binary;
using System.Text;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Host.Tests.XenPv;

/// <summary>
/// A tiny Xen PV kernel, assembled with Iced: an ELF64 with XEN_ELFNOTE_ENTRY, VIRT_BASE and
/// PADDR_OFFSET, which the PV builder loads at pseudo-physical 0 and enters at CPL 3 with RSI =
/// start_info. It attacks the hypervisor by hypercall (SYSCALL, as Linux's xen_hypercall_pv does)
/// and prints each result as one console_io line <c>name=hhhhhhhhhhhhhhhh</c> (the return value in
/// hex), then <c>alive=1</c> and SCHEDOP_shutdown(poweroff).
/// It finds its own machine frames as a PV kernel does: the P2M list (start_info.mfn_list) for its
/// pages, and for the entries of its page tables a walk from start_info.pt_base through the M2P
/// the hypervisor maps read-only at 0xFFFF800000000000.
/// </summary>
internal static class HostilePvGuest
{
    public const ulong VirtBase = 0xFFFF_FFFF_8000_0000;

    private const ulong M2pBase = 0xFFFF_8000_0000_0000;
    private const ulong FrameMask = 0x000F_FFFF_FFFF_F000;
    private const ulong P = 1;
    private const ulong Rw = 2;
    private const ulong Pcd = 0x10;
    private const ulong Pse = 0x80;
    private const ushort DomidSelf = 0x7FF0;

    /// <summary>A 64-bit ring-0 code descriptor (P, DPL 0, execute/read, L) and a ring-0 data one.</summary>
    public const ulong RingZeroCode = 0x00AF_9A00_0000_FFFF;
    private const ulong RingZeroData = 0x00CF_9200_0000_FFFF;

    /// <summary>A 64-bit available TSS (type 9), DPL 0: a system descriptor no PV guest may install.</summary>
    private const ulong Tss = 0x0000_8900_0000_0067;

    // Pseudo-physical (= image) offsets.
    private const int CodeSize = 0x3000;
    private const ulong Data = 0x3000;
    private const ulong StartInfoSave = Data;
    private const ulong L4Mfn = Data + 0x08;
    private const ulong SMfn = Data + 0x10;
    private const ulong XMfn = Data + 0x18;
    private const ulong GMfn = Data + 0x20;
    private const ulong T4Mfn = Data + 0x28;
    private const ulong T3Mfn = Data + 0x30;
    private const ulong T2Mfn = Data + 0x38;
    private const ulong T1Mfn = Data + 0x40;
    private const ulong M2pL3Mfn = Data + 0x48;
    private const ulong SL1Entry = Data + 0x50;
    private const ulong SL2Entry = Data + 0x58;
    private const ulong StoreMfn = Data + 0x60;
    private const ulong StoreVa = Data + 0x68;
    private const ulong SharedInfoMfn = Data + 0x70;
    private const ulong Request = Data + 0x100;
    private const ulong Operation = Data + 0x140;
    private const ulong FrameList = Data + 0x180;
    private const ulong Reservation = Data + 0x1C0;
    private const ulong Extent = Data + 0x200;
    private const ulong ShutdownReason = Data + 0x210;
    private const ulong AddToPhysmap = Data + 0x240;
    private const ulong GrantCopy = Data + 0x280;
    private const ulong HexDigits = Data + 0x300;
    private const ulong HexBuffer = Data + 0x320;
    private const ulong TrapTable = Data + 0x340;
    private const ulong GpError = Data + 0x360;
    private const ulong GpRip = Data + 0x368;
    private const ulong XPfn = Data + 0x370;
    private const ulong FailsafeFrame = Data + 0x380;
    private const ulong FailsafeRan = Data + 0x3E0;
    private const ulong GrantSetup = Data + 0x400;
    private const ulong GrantFrameList = Data + 0x418;
    private const ulong GrantFrameMfn = Data + 0x420;
    private const ulong PoolMfn = Data + 0x428;
    private const ulong GrantHandle = Data + 0x430;
    private const ulong GrantMapOp = Data + 0x440;
    private const ulong GrantUnmapOp = Data + 0x460;
    private const ulong Strings = Data + 0x480;

    /// <summary>Pseudo-physical pages mapped by the bootstrap tables that nothing uses: a grant-map target and a page to give back.</summary>
    private const ulong GrantTarget = 0x200000;
    private const ulong PoolPage = 0x201000;

    /// <summary>The domain's own id in process (the VMM's default): its own grants name it (DOMID_SELF is not a granter).</summary>
    private const ushort OwnDomid = 1;

    /// <summary>The GDT page (set_gdt), the page whose mapping is attacked, the self-mapping L1, and four pages for an L4 → L3 → L2 → L1 → L4 loop.</summary>
    private const ulong G = 0x4000;
    private const ulong S = 0x5000;
    private const ulong X = 0x6000;
    private const ulong T4 = 0x7000;
    private const ulong T3 = 0x8000;
    private const ulong T2 = 0x9000;
    private const ulong T1 = 0xA000;

    /// <summary>vCPU 1's vcpu_guest_context (two pages) and its stack page.</summary>
    private const ulong Context = 0xB000;
    private const ulong Vcpu1Stack = 0xD000;
    private const int ImageSize = 0xE000;

    /// <summary>vCPU 1's context names DS 0x63: GDT entry 12 of a GDT with no entries, which never loads.</summary>
    public const ushort BadDataSelector = 0x63;

    // Hypercalls and their commands.
    private const int MmuUpdate = 1;
    private const int SetTrapTable = 0;
    private const int VcpuOp = 24;
    private const int SchedYield = 0;
    private const int SetGdt = 2;
    private const int UpdateDescriptor = 10;
    private const int MemoryOp = 12;
    private const int UpdateVaMapping = 14;
    private const int ConsoleIo = 18;
    private const int GrantTableOp = 20;
    private const int GnttabCopy = 5;
    private const int GnttabMapGrantRef = 0;
    private const int GnttabUnmapGrantRef = 1;
    private const int GnttabSetupTable = 2;
    private const uint GntmapHostMap = 2;
    private const uint GntmapReadOnly = 4;
    private const uint GntmapContainsPte = 16;
    private const int XenmemAddToPhysmap = 7;
    private const int Iret = 23;
    private const int MmuextOp = 26;
    private const int SchedOp = 29;
    private const int DecreaseReservation = 1;
    private const int PopulatePhysmap = 6;
    private const int PinL1 = 0;
    private const int PinL4 = 3;
    private const int Unpin = 4;
    private const int NewBaseptr = 5;
    private const int UvmfInvlpg = 2;

    public static byte[] Build()
    {
        byte[] image = new byte[ImageSize];
        var program = new Program(image);
        program.Emit();
        return Elf(image);
    }

    private static ulong V(ulong offset) => VirtBase + offset;

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
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], VirtBase);
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], 64);     // program headers
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(h[54..], 56);
        BinaryPrimitives.WriteUInt16LittleEndian(h[56..], 2);

        Span<byte> load = h[64..];
        BinaryPrimitives.WriteUInt32LittleEndian(load, 1);         // PT_LOAD at VIRT_BASE, pseudo-physical 0
        BinaryPrimitives.WriteUInt32LittleEndian(load[4..], 7);
        BinaryPrimitives.WriteUInt64LittleEndian(load[8..], LoadOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(load[16..], VirtBase);
        BinaryPrimitives.WriteUInt64LittleEndian(load[24..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(load[32..], (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[40..], (ulong)image.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[48..], 0x1000);

        // XEN_ELFNOTE_ENTRY (1), VIRT_BASE (3), PADDR_OFFSET (4): 8-byte values.
        (uint Type, ulong Value)[] notes = [(1, VirtBase), (3, VirtBase), (4, 0)];
        Span<byte> note = h[(64 + 56)..];
        BinaryPrimitives.WriteUInt32LittleEndian(note, 4);         // PT_NOTE
        BinaryPrimitives.WriteUInt32LittleEndian(note[4..], 4);
        BinaryPrimitives.WriteUInt64LittleEndian(note[8..], NoteOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(note[32..], (ulong)(notes.Length * 24));
        BinaryPrimitives.WriteUInt64LittleEndian(note[40..], (ulong)(notes.Length * 24));
        BinaryPrimitives.WriteUInt64LittleEndian(note[48..], 4);
        for (int i = 0; i < notes.Length; i++)
        {
            Span<byte> xen = h[(NoteOffset + (i * 24))..];
            BinaryPrimitives.WriteUInt32LittleEndian(xen, 4);      // "Xen\0"
            BinaryPrimitives.WriteUInt32LittleEndian(xen[4..], 8);
            BinaryPrimitives.WriteUInt32LittleEndian(xen[8..], notes[i].Type);
            "Xen\0"u8.CopyTo(xen[12..]);
            BinaryPrimitives.WriteUInt64LittleEndian(xen[16..], notes[i].Value);
        }

        image.CopyTo(elf, LoadOffset);
        return elf;
    }

    /// <summary>The program being assembled: the attacks in order, each reported by the report subroutine.</summary>
    private sealed class Program(byte[] image)
    {
        private readonly Assembler _a = new(64);
        private ulong _nextString = Strings;
        private Label _reportLabel;

        public void Emit()
        {
            var a = _a;
            _reportLabel = a.CreateLabel("report");
            Encoding.ASCII.GetBytes("0123456789abcdef").CopyTo(image, (int)HexDigits);

            // struct xen_memory_reservation { extent_start, nr_extents = 1, extent_order = 0, mem_flags = 0, domid = DOMID_SELF }.
            BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)Reservation), V(Extent));
            BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)Reservation + 8), 1);
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)Reservation + 24), DomidSelf);

            // struct xen_add_to_physmap { DOMID_SELF, 0, XENMAPSPACE_shared_info, idx 0, gpfn (set below) }.
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)AddToPhysmap), DomidSelf);

            // struct gnttab_copy { source { gmfn, DOMID_SELF, offset 0 }, dest { gmfn, DOMID_SELF, offset 8 }, len 8, flags 0, status }.
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)GrantCopy + 8), DomidSelf);
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)GrantCopy + 24), DomidSelf);
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)GrantCopy + 26), 8);
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)GrantCopy + 32), 8);

            BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)XPfn), X >> 12);

            // struct gnttab_setup_table { DOMID_SELF, nr_frames 1, status, frame_list }.
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)GrantSetup), DomidSelf);
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan((int)GrantSetup + 4), 1);
            BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)GrantSetup + 16), V(GrantFrameList));

            // vCPU 1's context: kernel mode, failsafe masks events, Xen's flat CS/SS, no GDT of its own, DS that cannot load.
            Span<byte> context = image.AsSpan((int)Context);
            BinaryPrimitives.WriteUInt64LittleEndian(context[512..], 4 | 8);           // VGCF_in_kernel | VGCF_failsafe_disables_events
            BinaryPrimitives.WriteUInt16LittleEndian(context[(520 + 136)..], 0xE033);
            BinaryPrimitives.WriteUInt64LittleEndian(context[(520 + 144)..], 0x202);
            BinaryPrimitives.WriteUInt64LittleEndian(context[(520 + 152)..], V(Vcpu1Stack + 0x1000));
            BinaryPrimitives.WriteUInt16LittleEndian(context[(520 + 160)..], 0xE02B);
            BinaryPrimitives.WriteUInt16LittleEndian(context[(520 + 176)..], BadDataSelector);
            BinaryPrimitives.WriteUInt64LittleEndian(context[4968..], 0xE02B);          // kernel_ss
            BinaryPrimitives.WriteUInt64LittleEndian(context[4976..], V(Vcpu1Stack + 0x1000));
            StoreSlot(StartInfoSave, rsi);

            // The frames the attacks need: ours from the P2M, the bootstrap L4 from pt_base, the M2P's L3 from L4 slot 256.
            foreach ((ulong slot, ulong page) in new[] { (SMfn, S), (XMfn, X), (GMfn, G), (T4Mfn, T4), (T3Mfn, T3), (T2Mfn, T2), (T1Mfn, T1) })
            {
                a.mov(rax, page >> 12);
                MfnOfPfnInRax();
                StoreSlot(slot, rax);
            }

            LoadStartInfo(rsi);
            a.mov(rax, __qword_ptr[rsi + 88]);           // pt_base
            a.mov(rcx, VirtBase);
            a.sub(rax, rcx);
            a.shr(rax, 12);
            MfnOfPfnInRax();
            StoreSlot(L4Mfn, rax);
            LoadStartInfo(rsi);
            a.mov(rsi, __qword_ptr[rsi + 88]);
            a.mov(rax, __qword_ptr[rsi + (256 * 8)]);
            a.mov(rcx, FrameMask);
            a.and(rax, rcx);
            a.shr(rax, 12);
            StoreSlot(M2pL3Mfn, rax);
            EntryAddress(1, V(S));
            StoreSlot(SL1Entry, rax);
            EntryAddress(2, V(S));
            StoreSlot(SL2Entry, rax);

            // A frame the domain does not own: the hypervisor's (the M2P's L3), read-only and writable; a frame past memory.
            Update(() => LoadSlot(rax, SL1Entry), () => FrameEntry(M2pL3Mfn, P));
            Report("map-hypervisor-frame");
            Update(() => LoadSlot(rax, SL1Entry), () => FrameEntry(M2pL3Mfn, P | Rw));
            Report("map-m2p-writable");
            Update(() => LoadSlot(rax, SL1Entry), () => a.mov(rax, 0x0FFF_FFFF_F000UL | P));
            Report("map-past-memory");

            // Writes into a hypervisor frame (the M2P's L3): an entry update, an M2P update, a pin.
            Update(() => EntryOf(M2pL3Mfn, 0), () => a.xor(eax, eax));
            Report("update-hypervisor-frame");
            Update(() =>
            {
                EntryOf(M2pL3Mfn, 0);
                a.or(rax, 1);                             // MMU_MACHPHYS_UPDATE
            }, () => a.xor(eax, eax));
            Report("machphys-hypervisor-frame");
            Mmuext(PinL1, () => LoadSlot(rax, M2pL3Mfn));
            Report("pin-hypervisor-frame");

            // The pages the hypervisor and the back ends write: the XenStore ring (our own mapping of it made
            // read-only first) and shared_info cannot become page tables.
            LoadStartInfo(rsi);
            a.mov(rax, __qword_ptr[rsi + 56]);           // store_mfn
            StoreSlot(StoreMfn, rax);
            a.mov(rcx, M2pBase);
            a.mov(rax, __qword_ptr[rcx + (rax * 8)]);
            a.shl(rax, 12);
            a.mov(rcx, VirtBase);
            a.add(rax, rcx);
            StoreSlot(StoreVa, rax);
            LoadStartInfo(rsi);
            a.mov(rax, __qword_ptr[rsi + 40]);           // shared_info (machine address)
            a.shr(rax, 12);
            StoreSlot(SharedInfoMfn, rax);
            UpdateVaAt(StoreVa, () => FrameEntry(StoreMfn, P));
            Report("store-readonly");
            Mmuext(PinL1, () => LoadSlot(rax, StoreMfn));
            Report("pin-store-ring");
            UpdateVaAt(StoreVa, () => FrameEntry(StoreMfn, P | Rw));
            Report("store-restored");
            Mmuext(PinL1, () => LoadSlot(rax, SharedInfoMfn));
            Report("pin-shared-info");

            // The M2P into Xen's L4 slot 256, and into a guest slot of the L4.
            Update(() => EntryOf(L4Mfn, 256), () => FrameEntry(M2pL3Mfn, P | Rw));
            Report("l4-hypervisor-slot");
            Update(() => EntryOf(L4Mfn, 1), () => FrameEntry(M2pL3Mfn, P | Rw));
            Report("l4-entry-m2p");

            // A page-table frame (the L4 in CR3) writable: by mmu_update and by update_va_mapping; read-only is fine.
            Update(() => LoadSlot(rax, SL1Entry), () => FrameEntry(L4Mfn, P | Rw));
            Report("map-l4-writable");
            UpdateVa(S, () => FrameEntry(L4Mfn, P | Rw));
            Report("uvm-l4-writable");
            UpdateVa(S, () => FrameEntry(L4Mfn, P));
            Report("uvm-l4-readonly");
            a.mov(rsi, V(S) + (256 * 8));
            a.mov(rax, __qword_ptr[rsi]);
            LoadStartInfo(rsi);
            a.mov(rsi, __qword_ptr[rsi + 88]);
            a.mov(rcx, __qword_ptr[rsi + (256 * 8)]);
            a.cmp(rax, rcx);
            a.sete(al);
            a.movzx(eax, al);
            Report("l4-readable");
            UpdateVa(S, () => FrameEntry(SMfn, P | Rw));
            Report("s-restored");

            // Reserved and unsupported bits: a cache attribute in an L1 entry, a superpage in an L2 entry.
            Update(() => LoadSlot(rax, SL1Entry), () => FrameEntry(SMfn, P | Rw | Pcd));
            Report("pte-cache-bits");
            Update(() => LoadSlot(rax, SL2Entry), () =>
            {
                LoadSlot(rax, SL1Entry);
                a.mov(rcx, FrameMask);
                a.and(rax, rcx);
                a.or(rax, (int)(P | Rw | Pse));
            });
            Report("l2-superpage");

            // An L1 that maps itself writable: refused; made read-only, it pins.
            FrameEntry(XMfn, P | Rw);
            a.mov(rdi, V(X));
            a.mov(__qword_ptr[rdi], rax);
            UpdateVa(X, () => FrameEntry(XMfn, P));
            Report("x-readonly");
            Mmuext(PinL1, () => LoadSlot(rax, XMfn));
            Report("pin-l1-self-writable");
            Update(() => EntryOf(XMfn, 0), () => FrameEntry(XMfn, P));
            Report("x-fixed");
            Mmuext(PinL1, () => LoadSlot(rax, XMfn));
            Report("pin-l1-fixed");
            Mmuext(Unpin, () => LoadSlot(rax, XMfn));
            Report("unpin-l1");

            // An L4 whose hierarchy maps the L4 itself writable: L4 → L3 → L2 → L1 → the L4.
            foreach ((ulong page, ulong next) in new[] { (T4, T3Mfn), (T3, T2Mfn), (T2, T1Mfn), (T1, T4Mfn) })
            {
                FrameEntry(next, P | Rw);
                a.mov(rdi, V(page));
                a.mov(__qword_ptr[rdi], rax);
            }

            foreach ((ulong page, ulong slot, string name) in new[] { (T4, T4Mfn, "t4"), (T3, T3Mfn, "t3"), (T2, T2Mfn, "t2"), (T1, T1Mfn, "t1") })
            {
                UpdateVa(page, () => FrameEntry(slot, P));
                Report($"{name}-readonly");
            }

            Mmuext(PinL4, () => LoadSlot(rax, T4Mfn));
            Report("pin-l4-self-writable");
            Update(() => EntryOf(T1Mfn, 0), () => FrameEntry(T4Mfn, P));
            Report("t-fixed");
            Mmuext(PinL4, () => LoadSlot(rax, T4Mfn));
            Report("pin-l4-fixed");

            // new_baseptr to frames that are not L4s: a validated L3, a writable page.
            Mmuext(NewBaseptr, () => LoadSlot(rax, T3Mfn));
            Report("new-baseptr-l3");
            Mmuext(NewBaseptr, () => LoadSlot(rax, SMfn));
            Report("new-baseptr-writable");
            Mmuext(Unpin, () => LoadSlot(rax, T4Mfn));
            Report("unpin-l4");

            // Unpinning the L4 in CR3: Xen allows it (CR3 holds its own type reference); twice is refused.
            Mmuext(Unpin, () => LoadSlot(rax, L4Mfn));
            Report("unpin-cr3");
            a.mov(eax, 1);
            Report("after-unpin");
            Mmuext(Unpin, () => LoadSlot(rax, L4Mfn));
            Report("unpin-cr3-again");
            Mmuext(PinL4, () => LoadSlot(rax, L4Mfn));
            Report("repin-cr3");

            // The GDT from a hypervisor frame, a descriptor written into one.
            LoadSlot(rax, M2pL3Mfn);
            StoreSlot(FrameList, rax);
            CallSetGdt();
            Report("gdt-hypervisor-frame");
            CallUpdateDescriptor(M2pL3Mfn, 8, RingZeroCode);
            Report("update-descriptor-hypervisor-frame");

            // The GDT: ring-0 code and data descriptors and a TSS in a page.
            a.mov(rdi, V(G));
            a.mov(rax, RingZeroCode);
            a.mov(__qword_ptr[rdi + 8], rax);
            a.mov(rax, RingZeroData);
            a.mov(__qword_ptr[rdi + 16], rax);
            a.mov(rax, Tss);
            a.mov(__qword_ptr[rdi + 24], rax);
            LoadSlot(rax, GMfn);
            StoreSlot(FrameList, rax);
            CallSetGdt();
            Report("gdt-writable-frame");
            UpdateVa(G, () => FrameEntry(GMfn, P));
            Report("g-readonly");
            CallSetGdt();
            Report("gdt-tss");
            CallUpdateDescriptor(GMfn, 24, 0);
            Report("clear-tss");
            CallSetGdt();
            Report("gdt-ring0-code");
            a.xor(eax, eax);
            a.mov(ecx, 8);
            a.lar(eax, ecx);
            Report("lar");

            // iret into our own code segment (selector 8, RPL 0): Xen forces RPL 3; then back to Xen's flat CS.
            // (A frame's CS with RPL 0 means the guest kernel, as in the bounce frames; RPL 3 means user mode.)
            Label ownCs = a.CreateLabel();
            IretTo(ownCs, 0x0008, 0x0202, 0);
            a.Label(ref ownCs);
            a.mov(ax, cs);
            a.movzx(eax, ax);
            Report("own-cs");
            Label flatCs = a.CreateLabel();
            IretTo(flatCs, 0xE030, 0x0202, 0);
            a.Label(ref flatCs);
            UpdateVa(G, () => FrameEntry(GMfn, P | Rw));
            Report("map-gdt-writable");
            CallUpdateDescriptor(GMfn, 32, RingZeroCode);
            Report("update-descriptor-ring0");
            a.mov(rsi, V(G) + 32);
            a.mov(rax, __qword_ptr[rsi]);
            Report("descriptor-read-back");
            CallUpdateDescriptor(GMfn, 40, Tss);
            Report("update-descriptor-tss");
            CallUpdateDescriptor(L4Mfn, 8, RingZeroCode);
            Report("update-descriptor-l4");

            // iret to CS 0xe030 (RPL 0) with IOPL 3 asked for: Xen forces RPL 3 and clears IOPL.
            Label afterIret = a.CreateLabel();
            IretTo(afterIret, 0xE030, 0x3202, 0x1234);
            a.Label(ref afterIret);
            Report("iret-rax");
            a.mov(ax, cs);
            a.movzx(eax, ax);
            Report("iret-cs");
            a.pushfq();
            a.pop(rax);
            a.and(eax, 0x3000);
            Report("iret-iopl");

            // iret to CS 0x18 (the cleared TSS slot: an empty descriptor): Xen's iretq faults in guest context,
            // our #GP handler gets the error code and the frame of where the iret was going.
            Label gpHandler = a.CreateLabel();
            Label afterBadIret = a.CreateLabel();
            a.mov(rdi, V(TrapTable));
            a.mov(__byte_ptr[rdi], 13);
            a.lea(rax, __[gpHandler]);
            a.mov(__qword_ptr[rdi + 8], rax);
            a.mov(eax, SetTrapTable);
            a.syscall();
            Report("set-trap-table");
            IretTo(afterBadIret, 0x0018, 0x0202, 0);
            a.Label(ref gpHandler);
            a.mov(rax, __qword_ptr[rsp + 16]);
            StoreSlot(GpError, rax);
            a.mov(rax, __qword_ptr[rsp + 24]);
            StoreSlot(GpRip, rax);
            a.mov(rsp, r15);
            a.Label(ref afterBadIret);
            LoadSlot(rax, GpError);
            Report("iret-bad-cs-error");
            LoadSlot(rax, GpRip);
            a.lea(rcx, __[afterBadIret]);
            a.cmp(rax, rcx);
            a.sete(al);
            a.movzx(eax, al);
            Report("iret-bad-cs-rip");
            a.mov(ax, cs);
            a.movzx(eax, ax);
            Report("after-bad-iret-cs");

            // shared_info placed on the L4 (a PV domain is not translated); grant copies from our page into
            // the L4 and the GDT frame in use, and into the page itself.
            LoadSlot(rax, L4Mfn);
            StoreSlot(AddToPhysmap + 16, rax);
            a.mov(eax, MemoryOp);
            a.mov(edi, XenmemAddToPhysmap);
            a.mov(rsi, V(AddToPhysmap));
            a.syscall();
            Report("add-to-physmap-l4");
            foreach ((ulong destination, string name) in new[] { (L4Mfn, "grant-copy-into-l4"), (GMfn, "grant-copy-into-gdt"), (SMfn, "grant-copy-own-page") })
            {
                CopyFromS(destination);
                Report(name);
            }

            // Giving back (or repopulating) frames in use and the hypervisor's; then a free page of ours.
            Reserve(DecreaseReservation, L4Mfn);
            Report("decrease-l4");
            Reserve(DecreaseReservation, M2pL3Mfn);
            Report("decrease-m2p");
            Reserve(PopulatePhysmap, L4Mfn);
            Report("populate-l4");
            UpdateVa(X, () => a.xor(eax, eax));
            Report("x-unmapped");
            Reserve(DecreaseReservation, XMfn);
            Report("decrease-free");
            Reserve(DecreaseReservation, XMfn);
            Report("decrease-twice");

            // populate_physmap of X's pfn: a new machine frame, answered in the extent list, which the M2P maps back to the pfn;
            // mapped where X was, it reads as a zeroed page.
            Reserve(PopulatePhysmap, XPfn);
            Report("populate-x");
            LoadSlot(rax, Extent);
            StoreSlot(XMfn, rax);
            a.mov(rcx, M2pBase);
            a.mov(rax, __qword_ptr[rcx + (rax * 8)]);
            Report("populate-x-m2p");
            UpdateVa(X, () => FrameEntry(XMfn, P | Rw));
            Report("x-remapped");
            a.mov(rdi, V(X));
            a.mov(rax, __qword_ptr[rdi]);
            Report("x-contents");

            EmitGrantMaps();

            // vCPU 1 from a context whose DS does not load: Xen's first context switch into it enters the
            // failsafe callback with the frame naming the selectors; the callback copies the frame for vCPU 0.
            Label failsafe = a.CreateLabel();
            Label vcpu1Idle = a.CreateLabel();
            a.mov(rdi, V(Context));
            a.lea(rax, __[vcpu1Idle]);
            a.mov(__qword_ptr[rdi + 520 + 128], rax);
            a.lea(rax, __[failsafe]);
            a.mov(__qword_ptr[rdi + 5120], rax);
            LoadSlot(rax, L4Mfn);
            a.shl(rax, 12);
            a.mov(rdi, V(Context));
            a.mov(__qword_ptr[rdi + 4984 + 24], rax);
            a.mov(eax, VcpuOp);
            a.xor(edi, edi);                             // VCPUOP_initialise
            a.mov(esi, 1);
            a.mov(rdx, V(Context));
            a.syscall();
            Report("vcpu1-initialise");
            a.mov(eax, VcpuOp);
            a.mov(edi, 1);                               // VCPUOP_up
            a.mov(esi, 1);
            a.xor(edx, edx);
            a.syscall();
            Report("vcpu1-up");
            Label waitFailsafe = a.CreateLabel();
            Label failsafeSeen = a.CreateLabel();
            a.mov(r14d, 1_000_000);
            a.Label(ref waitFailsafe);
            LoadSlot(rax, FailsafeRan);
            a.test(rax, rax);
            a.jnz(failsafeSeen);
            a.mov(eax, SchedOp);
            a.mov(edi, SchedYield);
            a.syscall();
            a.dec(r14d);
            a.jnz(waitFailsafe);
            a.Label(ref failsafeSeen);
            LoadSlot(rax, FailsafeRan);
            Report("failsafe-ran");
            foreach ((int index, string name) in new[] { (2, "failsafe-ds"), (3, "failsafe-es"), (7, "failsafe-cs"), (8, "failsafe-rflags"), (9, "failsafe-rsp"), (10, "failsafe-ss") })
            {
                LoadSlot(rax, FailsafeFrame + ((ulong)index * 8));
                Report(name);
            }

            LoadSlot(rax, FailsafeFrame + (6 * 8));
            a.lea(rcx, __[vcpu1Idle]);
            a.cmp(rax, rcx);
            a.sete(al);
            a.movzx(eax, al);
            Report("failsafe-rip");

            a.mov(eax, 1);
            Report("alive");
            a.mov(eax, SchedOp);
            a.mov(edi, 2);                               // SCHEDOP_shutdown
            a.mov(rsi, V(ShutdownReason));               // SHUTDOWN_poweroff
            a.syscall();
            Label forever = a.CreateLabel();
            a.Label(ref forever);
            a.jmp(forever);

            // vCPU 1: the failsafe callback keeps the frame for vCPU 0 and takes its vCPU down; the context's own entry idles.
            a.Label(ref failsafe);
            for (int i = 0; i < 11; i++)
            {
                a.mov(rax, __qword_ptr[rsp + (i * 8)]);
                StoreSlot(FailsafeFrame + ((ulong)i * 8), rax);
            }

            a.mov(eax, 1);
            StoreSlot(FailsafeRan, rax);
            a.mov(eax, VcpuOp);
            a.mov(edi, 2);                               // VCPUOP_down, itself
            a.mov(esi, 1);
            a.xor(edx, edx);
            a.syscall();
            a.Label(ref vcpu1Idle);
            a.pause();
            a.jmp(vcpu1Idle);

            EmitReport();
            using var stream = new MemoryStream();
            a.Assemble(new StreamCodeWriter(stream), VirtBase);
            byte[] code = stream.ToArray();
            if (code.Length > CodeSize)
            {
                throw new InvalidOperationException($"the hostile PV kernel's code is {code.Length} bytes, more than {CodeSize}");
            }

            code.CopyTo(image, 0);
        }

        /// <summary>report: RAX = value, RBX = "name=" (R12 bytes) → console_io of the name, 16 hex digits, a newline. Keeps RAX.</summary>
        private void EmitReport()
        {
            var a = _a;
            a.Label(ref _reportLabel);
            a.mov(r13, rax);
            ConsoleWrite(() =>
            {
                a.mov(rsi, r12);
                a.mov(rdx, rbx);
            });
            a.mov(rdi, V(HexBuffer));
            a.mov(rsi, V(HexDigits));
            a.mov(rdx, r13);
            a.mov(r8d, 16);
            Label digit = a.CreateLabel();
            a.Label(ref digit);
            a.rol(rdx, 4);
            a.mov(eax, edx);
            a.and(eax, 15);
            a.movzx(eax, __byte_ptr[rsi + rax]);
            a.mov(__byte_ptr[rdi], al);
            a.inc(rdi);
            a.dec(r8d);
            a.jnz(digit);
            a.mov(__byte_ptr[rdi], 10);
            ConsoleWrite(() =>
            {
                a.mov(esi, 17);
                a.mov(rdx, V(HexBuffer));
            });
            a.mov(rax, r13);
            a.ret();
        }

        /// <summary>console_io(CONSOLEIO_write, RSI bytes, RDX): <paramref name="arguments"/> sets RSI and RDX.</summary>
        private void ConsoleWrite(Action arguments)
        {
            arguments();
            _a.mov(eax, ConsoleIo);
            _a.xor(edi, edi);
            _a.syscall();
        }

        private void Report(string name)
        {
            byte[] text = Encoding.ASCII.GetBytes(name + "=");
            if (_nextString + (ulong)text.Length > G)
            {
                throw new InvalidOperationException("the report names overflow the data page");
            }

            text.CopyTo(image, (int)_nextString);
            _a.mov(rbx, V(_nextString));
            _a.mov(r12d, text.Length);
            _a.call(_reportLabel);
            _nextString += (ulong)text.Length;
        }

        private void LoadStartInfo(AssemblerRegister64 target) => LoadSlot(target, StartInfoSave);

        private void LoadSlot(AssemblerRegister64 target, ulong slot)
        {
            _a.mov(target, V(slot));
            _a.mov(target, __qword_ptr[target]);
        }

        /// <summary>Stores <paramref name="source"/> (not RDI) at <paramref name="slot"/>.</summary>
        private void StoreSlot(ulong slot, AssemblerRegister64 source)
        {
            _a.mov(rdi, V(slot));
            _a.mov(__qword_ptr[rdi], source);
        }

        /// <summary>RAX = pfn → RAX = mfn, from the P2M list the builder handed over (start_info.mfn_list).</summary>
        private void MfnOfPfnInRax()
        {
            LoadStartInfo(rsi);
            _a.mov(rsi, __qword_ptr[rsi + 104]);
            _a.mov(rax, __qword_ptr[rsi + (rax * 8)]);
        }

        /// <summary>RAX = (mfn at <paramref name="slot"/>) &lt;&lt; 12 | <paramref name="flags"/>.</summary>
        private void FrameEntry(ulong slot, ulong flags)
        {
            LoadSlot(rax, slot);
            _a.shl(rax, 12);
            _a.or(rax, (int)flags);
        }

        /// <summary>RAX = the machine address of entry <paramref name="index"/> of the table in frame <paramref name="slot"/>.</summary>
        private void EntryOf(ulong slot, int index)
        {
            LoadSlot(rax, slot);
            _a.shl(rax, 12);
            _a.add(rax, index * 8);
        }

        /// <summary>RAX = the machine address of the level-<paramref name="level"/> entry mapping <paramref name="va"/>: the walk from pt_base, each next table found through the M2P.</summary>
        private void EntryAddress(int level, ulong va)
        {
            var a = _a;
            LoadStartInfo(rsi);
            a.mov(rbx, __qword_ptr[rsi + 88]);
            for (int walk = 4; walk > level; walk--)
            {
                int index = (int)((va >> (12 + (9 * (walk - 1)))) & 511);
                a.mov(rax, __qword_ptr[rbx + (index * 8)]);
                a.mov(rcx, FrameMask);
                a.and(rax, rcx);
                if (walk - 1 == level)
                {
                    a.add(rax, (int)((va >> (12 + (9 * (level - 1)))) & 511) * 8);
                    return;
                }

                a.shr(rax, 12);
                a.mov(rcx, M2pBase);
                a.mov(rax, __qword_ptr[rcx + (rax * 8)]);
                a.shl(rax, 12);
                a.mov(rcx, VirtBase);
                a.add(rax, rcx);
                a.mov(rbx, rax);
            }
        }

        /// <summary>mmu_update of one request: <paramref name="pointer"/> and <paramref name="value"/> each leave their part in RAX.</summary>
        private void Update(Action pointer, Action value)
        {
            pointer();
            StoreSlot(Request, rax);
            value();
            StoreSlot(Request + 8, rax);
            _a.mov(eax, MmuUpdate);
            _a.mov(rdi, V(Request));
            _a.mov(esi, 1);
            _a.xor(edx, edx);
            _a.mov(r10d, DomidSelf);
            _a.syscall();
        }

        /// <summary>update_va_mapping(page, value in RAX, UVMF_INVLPG).</summary>
        private void UpdateVa(ulong page, Action value)
        {
            value();
            _a.mov(rsi, rax);
            _a.mov(rdi, V(page));
            _a.mov(edx, UvmfInvlpg);
            _a.mov(eax, UpdateVaMapping);
            _a.syscall();
        }

        /// <summary>update_va_mapping(the address at <paramref name="vaSlot"/>, value in RAX, UVMF_INVLPG).</summary>
        private void UpdateVaAt(ulong vaSlot, Action value)
        {
            value();
            _a.mov(rsi, rax);
            LoadSlot(rdi, vaSlot);
            _a.mov(edx, UvmfInvlpg);
            _a.mov(eax, UpdateVaMapping);
            _a.syscall();
        }

        /// <summary>mmuext_op of one command whose arg1 <paramref name="argument"/> leaves in RAX.</summary>
        private void Mmuext(int command, Action argument)
        {
            argument();
            StoreSlot(Operation + 8, rax);
            _a.mov(rdi, V(Operation));
            _a.mov(__dword_ptr[rdi], command);
            _a.mov(eax, MmuextOp);
            _a.mov(esi, 1);
            _a.xor(edx, edx);
            _a.mov(r10d, DomidSelf);
            _a.syscall();
        }

        /// <summary>
        /// Grant maps into our own page tables: the grant table set up and mapped at X, ref 0 granting
        /// page S and ref 1 the L4 to ourselves; a writable map of the L4's grant, a map with no frame
        /// in the balloon pool, a contains_pte map into the L4; then a page given back and S mapped
        /// read-only at <see cref="GrantTarget"/>, read through the map, mapped over and overwritten
        /// (both refused), unmapped twice.
        /// </summary>
        private void EmitGrantMaps()
        {
            var a = _a;
            a.mov(eax, GrantTableOp);
            a.mov(edi, GnttabSetupTable);
            a.mov(rsi, V(GrantSetup));
            a.mov(edx, 1);
            a.syscall();
            Report("grant-setup");
            LoadSlot(rax, GrantFrameList);
            StoreSlot(GrantFrameMfn, rax);
            UpdateVa(X, () => FrameEntry(GrantFrameMfn, P | Rw));
            Report("grant-frame-mapped");
            a.mov(rdi, V(X));
            a.mov(__dword_ptr[rdi], 1 | (OwnDomid << 16));    // ref 0: GTF_permit_access, to ourselves, page S
            LoadSlot(rax, SMfn);
            a.mov(__dword_ptr[rdi + 4], eax);
            a.mov(__dword_ptr[rdi + 8], 1 | (OwnDomid << 16)); // ref 1: the L4
            LoadSlot(rax, L4Mfn);
            a.mov(__dword_ptr[rdi + 12], eax);

            MapGrant(() => a.mov(rax, V(GrantTarget)), GntmapHostMap, 1);
            Report("grant-map-own-l4");
            MapGrant(() => a.mov(rax, V(GrantTarget)), GntmapHostMap | GntmapReadOnly, 0);
            Report("grant-map-no-frame");
            MapGrant(() => EntryOf(L4Mfn, 1), GntmapHostMap | GntmapReadOnly | GntmapContainsPte, 0);
            Report("grant-map-into-l4");

            // A page of ours given back (unmapped first), so the pool has a frame to stand in.
            a.mov(rax, PoolPage >> 12);
            MfnOfPfnInRax();
            StoreSlot(PoolMfn, rax);
            UpdateVa(PoolPage, () => a.xor(eax, eax));
            Report("pool-unmapped");
            Reserve(DecreaseReservation, PoolMfn);
            Report("pool-given");

            MapGrant(() => a.mov(rax, V(GrantTarget)), GntmapHostMap | GntmapReadOnly, 0);
            Report("grant-map");
            a.mov(rsi, V(GrantMapOp));
            a.mov(eax, __dword_ptr[rsi + 20]);
            StoreSlot(GrantHandle, rax);
            a.mov(rsi, V(GrantTarget));
            a.mov(rax, __qword_ptr[rsi]);
            a.mov(rsi, V(S));
            a.cmp(rax, __qword_ptr[rsi]);
            a.sete(al);
            a.movzx(eax, al);
            Report("grant-map-reads-s");
            MapGrant(() => a.mov(rax, V(GrantTarget)), GntmapHostMap | GntmapReadOnly, 0);
            Report("grant-map-over-map");
            UpdateVa(GrantTarget, () => FrameEntry(SMfn, P));
            Report("granted-pte-overwrite");
            UnmapGrant();
            Report("grant-unmap");
            UnmapGrant();
            Report("grant-unmap-twice");
        }

        /// <summary>GNTTABOP_map_grant_ref of one op (host_addr from RAX, our own domid); RAX = its status.</summary>
        private void MapGrant(Action hostAddress, uint flags, uint reference)
        {
            hostAddress();
            StoreSlot(GrantMapOp, rax);
            _a.mov(rdi, V(GrantMapOp));
            _a.mov(__dword_ptr[rdi + 8], flags);
            _a.mov(__dword_ptr[rdi + 12], reference);
            _a.mov(__dword_ptr[rdi + 16], OwnDomid | (0x7FFFu << 16));   // dom, and a status the hypervisor must overwrite
            _a.mov(eax, GrantTableOp);
            _a.mov(edi, GnttabMapGrantRef);
            _a.mov(rsi, V(GrantMapOp));
            _a.mov(edx, 1);
            _a.syscall();
            _a.mov(rsi, V(GrantMapOp) + 18);
            _a.movsx(rax, __word_ptr[rsi]);
        }

        /// <summary>GNTTABOP_unmap_grant_ref of the saved handle at <see cref="GrantTarget"/>; RAX = its status.</summary>
        private void UnmapGrant()
        {
            _a.mov(rax, V(GrantTarget));
            StoreSlot(GrantUnmapOp, rax);
            LoadSlot(rax, GrantHandle);
            _a.mov(rdi, V(GrantUnmapOp));
            _a.mov(__dword_ptr[rdi + 16], eax);
            _a.mov(__word_ptr[rdi + 20], 0x7FFF);
            _a.mov(eax, GrantTableOp);
            _a.mov(edi, GnttabUnmapGrantRef);
            _a.mov(rsi, V(GrantUnmapOp));
            _a.mov(edx, 1);
            _a.syscall();
            _a.mov(rsi, V(GrantUnmapOp) + 20);
            _a.movsx(rax, __word_ptr[rsi]);
        }

        /// <summary>set_gdt(FrameList, 512 entries).</summary>
        private void CallSetGdt()
        {
            _a.mov(eax, SetGdt);
            _a.mov(rdi, V(FrameList));
            _a.mov(esi, 512);
            _a.syscall();
        }

        /// <summary>update_descriptor(machine address of entry <paramref name="offset"/>/8 in frame <paramref name="slot"/>, <paramref name="descriptor"/>).</summary>
        private void CallUpdateDescriptor(ulong slot, int offset, ulong descriptor)
        {
            EntryOf(slot, offset / 8);
            _a.mov(rdi, rax);
            _a.mov(rsi, descriptor);
            _a.mov(eax, UpdateDescriptor);
            _a.syscall();
        }

        /// <summary>GNTTABOP_copy of 8 bytes from page S into the frame at <paramref name="destinationSlot"/>; RAX = the op's status.</summary>
        private void CopyFromS(ulong destinationSlot)
        {
            LoadSlot(rax, SMfn);
            StoreSlot(GrantCopy, rax);
            LoadSlot(rax, destinationSlot);
            StoreSlot(GrantCopy + 16, rax);
            _a.mov(eax, GrantTableOp);
            _a.mov(edi, GnttabCopy);
            _a.mov(rsi, V(GrantCopy));
            _a.mov(edx, 1);
            _a.syscall();
            _a.mov(rsi, V(GrantCopy) + 36);
            _a.movsx(rax, __word_ptr[rsi]);
        }

        /// <summary>memory_op(<paramref name="command"/>, the one-extent reservation naming the frame at <paramref name="slot"/>).</summary>
        private void Reserve(int command, ulong slot)
        {
            LoadSlot(rax, slot);
            StoreSlot(Extent, rax);
            _a.mov(eax, MemoryOp);
            _a.mov(edi, command);
            _a.mov(rsi, V(Reservation));
            _a.syscall();
        }

        /// <summary>HYPERVISOR_iret with the frame { RAX, R11, RCX, flags, RIP, CS, RFLAGS, RSP, SS } on the stack; RSP returns to its value before the frame.</summary>
        private void IretTo(Label target, int cs, int rflags, int raxValue)
        {
            var a = _a;
            a.mov(r15, rsp);
            a.push(0xE02B);
            a.push(r15);
            a.push(rflags);
            a.push(cs);
            a.lea(rax, __[target]);
            a.push(rax);
            a.push(0);
            a.push(0);
            a.push(0);
            a.push(raxValue);
            a.mov(eax, Iret);
            a.syscall();
        }
    }
}
