using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// PV SMP: VCPUOP_initialise with a vcpu_guest_context as Linux's cpu_initialize_context fills it,
/// each hostile field refused with Xen's errno and nothing taken; VCPUOP_up handing the accelerator
/// the CPL-3 start state; down and up again; the last vCPU down powering off; flushes for all vCPUs
/// reaching the other vCPUs.
/// </summary>
public sealed class PvSmpTests : IDisposable
{
    private const int VcpuOpInitialise = 0;
    private const int VcpuOpUp = 1;
    private const int VcpuOpDown = 2;
    private const int VcpuOpIsUp = 3;

    private const ulong Context = 0x6_0000;
    private const ulong Ops = 0x7_0000;
    private const ulong SharedInfo = 0x3F0UL << 12;
    private const ulong KernelL4 = 0x100;
    private const ulong GuestGdt = 0x110;
    private const ulong KernelRip = 0xFFFF_FFFF_8100_0000;
    private const ulong KernelRsp = 0xFFFF_FFFF_8200_3F58;
    private const ulong PerCpuGs = 0xFFFF_8880_0F00_0000;

    // Linux's GDT: 2 = __KERNEL_CS (64-bit code), 3 = __KERNEL_DS, 5 = __USER_DS, all written with DPL 0 or 3.
    private const ulong Code64 = 0x00AF_9B00_0000_FFFFUL;
    private const ulong Data = 0x00CF_9300_0000_FFFFUL;
    private const ulong UserData = 0x00CF_F300_0000_FFFFUL;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly FakeHypervisorHost _host = new();
    private readonly XenDomain _xen;
    private readonly FakeHypercallContext _cpu;

    public PvSmpTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions { VcpuCount = 2 });
        _xen.Connect(_host);
        var p2m = new PvPhysToMachine([.. Enumerable.Range(0, 0x200).Select(i => (ulong)i)], 0x400, seed: 5);
        _xen.AttachPvPaging(new PvPageTables(_memory, p2m, _xen.Counters));
        _xen.AttachPvCpu([0x300, 0x310]);
        _xen.PlacePvSharedInfo(SharedInfo);
        _memory.Write((GuestGdt << 12) + 16, Code64);
        _memory.Write((GuestGdt << 12) + 24, Data);
        _memory.Write((GuestGdt << 12) + 40, UserData);
        _cpu = new FakeHypercallContext(_memory);
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    private PvPageTables Tables => _xen.PvTables!;

    [Fact]
    public void Initialise_ChecksEveryField_ThenUpStartsTheVcpuAtCplThreeWithItsContext()
    {
        Assert.Equal(-XenErrno.EINVAL, Op(VcpuOpUp, 1));           // not initialised yet
        Assert.Equal(0, Op(VcpuOpIsUp, 1));

        // Each hostile context is refused with Xen's errno, and takes nothing.
        AssertRefused(XenErrno.EINVAL, c => Put(c, 520 + 128, 0x0000_8000_0000_0000));      // RIP not canonical
        AssertRefused(XenErrno.EINVAL, c => Put(c, 720 + (14 * 16) + 8, 0x1UL << 60));       // a trap handler not canonical
        AssertRefused(XenErrno.EINVAL, c => Put(c, 5152, 0x0080_0000_0000_0000));           // gs_base_kernel not canonical
        AssertRefused(XenErrno.EINVAL, c => Put(c, 4816, 0x1234));                           // LDT base not page-aligned
        AssertRefused(XenErrno.EINVAL, c => Put(c, 4960, 8000));                             // more GDT entries than 14 pages
        AssertRefused(XenErrno.EINVAL, c => Put(c, 4832, 0x300));                            // a GDT frame of the hypervisor's
        AssertRefused(XenErrno.EINVAL, c => PutWord(c, 520 + 136, 0x18));                    // CS a data segment
        AssertRefused(XenErrno.EINVAL, c => PutWord(c, 520 + 160, 0x2C));                    // SS in the LDT
        AssertRefused(XenErrno.EINVAL, c => Put(c, 4984 + 24, GuestGdt << 12));              // CR3 a GDT frame, not an L4
        AssertRefused(XenErrno.EINVAL, c => Put(c, 4984 + 24, 0x300UL << 12));               // CR3 the hypervisor's frame
        AssertRefused(XenErrno.EINVAL, c => Put(c, 5048 + 32, 1));                           // DR4
        AssertRefused(XenErrno.EOPNOTSUPP, c => Put(c, 512, 4 | 1));                         // an FPU image

        // Linux's context: accepted once; the frames hold their types; the vCPU is not running yet.
        byte[] context = LinuxContext();
        _memory.Write(Context, context);
        Assert.Equal(0, Op(VcpuOpInitialise, 1, Context));
        Assert.Equal(-XenErrno.EEXIST, Op(VcpuOpInitialise, 1, Context));
        Assert.Equal(-XenErrno.EEXIST, Op(VcpuOpInitialise, 0, Context));   // vCPU 0 runs the builder's context
        Assert.Equal(KernelL4, _xen.PvPaging(1).KernelBase);
        Assert.Equal(PvPageType.L4, Tables.TypeInUse(KernelL4));
        Assert.Equal(PvPageType.SegmentDescriptor, Tables.TypeInUse(GuestGdt));
        Assert.Empty(_host.VcpuControls);

        // vCPU 1's kernel L4 keeps its type for vCPU 0 too: it cannot be cleared as a plain page.
        _memory.Write(Ops, (uint)PvMmuextCommand.ClearPage);
        _memory.Write(Ops + 8, KernelL4);
        Assert.Equal(-XenErrno.EINVAL, _cpu.Call(_xen, HypercallOp.MmuextOp, Ops, 1, 0, XenDomain.DomidSelf));
        Assert.Equal(PvPageType.L4, Tables.TypeInUse(KernelL4));

        // Up: the accelerator starts it with the context — CPL 3 (RPL forced to 3), its PV GDT, CR3 its kernel L4.
        Assert.Equal(0, Op(VcpuOpUp, 1));
        (int vcpu, string action, VcpuState? state) = Assert.Single(_host.VcpuControls);
        Assert.Equal((1, "start"), (vcpu, action));
        Assert.NotNull(state);
        Assert.Equal((ushort)0x13, state.Cs.Selector);
        Assert.True(state.Cs.Long && state.Cs.Present && state.Cs.Dpl == 3);
        Assert.Equal((ushort)0x1B, state.Ss.Selector);
        Assert.Equal(3, state.Ss.Dpl);
        Assert.Equal((KernelRip, KernelRsp), (state.Rip, state.Rsp));
        Assert.Equal(KernelL4 << 12, state.Cr3);
        Assert.Equal(PvCpu.GdtBase(1), state.Gdt.Base);
        Assert.Equal(PerCpuGs, state.Gs.Base);
        Assert.Equal(0x202UL, state.Rflags);                       // IOPL 1 became the virtual IOPL, IF set
        Assert.Equal(1, Op(VcpuOpIsUp, 1));
        Assert.Equal(0, Op(VcpuOpUp, 1));                          // already up: nothing more
        Assert.Single(_host.VcpuControls);

        // Down parks it; up resumes it where it stopped (no new state); the last vCPU down powers off.
        Assert.Equal(0, Op(VcpuOpDown, 1));
        Assert.Equal(0, Op(VcpuOpIsUp, 1));
        Assert.Equal(0, Op(VcpuOpUp, 1));
        Assert.Equal(3, _host.VcpuControls.Count);
        Assert.Equal((1, "stop", (VcpuState?)null), _host.VcpuControls[1]);
        Assert.Equal((1, "start", (VcpuState?)null), _host.VcpuControls[2]);
        Assert.Equal(0, Op(VcpuOpDown, 1));
        Assert.False(_host.Control.IsStopRequested);
        Assert.Equal(0, Op(VcpuOpDown, 0));
        Assert.Equal(MachineStopReason.PowerOff, _host.Control.StopReason);
        Assert.Equal(-XenErrno.ENOENT, Op(VcpuOpInitialise, 2, Context));
    }

    [Fact]
    public void AContextWhoseDataSelectorsDoNotLoad_StartsInTheFailsafeCallback_WithXensFrame()
    {
        // vCPU 1's kernel stack mapped writable: L4 0x100 → L3 0x101 → L2 0x102 → L1 0x103 → 0x104.
        MapKernelStack();
        const ulong FailsafeCallback = 0xFFFF_FFFF_8100_3000;
        byte[] context = LinuxContext();
        PutWord(context, 520 + 176, 0x63);                   // DS: GDT entry 12, empty (not present)
        PutWord(context, 520 + 192, 0x1234);                 // GS: past the context's 16 entries
        Put(context, 520 + 88, 0xC0C0);                      // RCX
        Put(context, 520 + 48, 0x1111);                      // R11
        Put(context, 512, 4 | 8);                            // VGCF_in_kernel | VGCF_failsafe_disables_events
        _memory.Write(Context, context);
        _memory.Write(SharedInfo + 64 + 1, (byte)0);        // vCPU 1's events unmasked
        Assert.Equal(0, Op(VcpuOpInitialise, 1, Context));   // Xen does not check DS/ES/FS/GS here
        Assert.Equal(0, Op(VcpuOpUp, 1));

        (_, _, VcpuState? state) = Assert.Single(_host.VcpuControls);
        Assert.NotNull(state);
        ulong frameSp = (KernelRsp & ~0xFUL) - 88;
        Assert.Equal((FailsafeCallback, frameSp), (state.Rip, state.Rsp));
        Assert.Equal((PvCpu.FlatKernelCs, PvCpu.FlatKernelSs), (state.Cs.Selector, state.Ss.Selector));
        Assert.True(state.Ds.Unusable && state.Gs.Unusable);  // the bad ones loaded as null
        Assert.Equal(0x2B, state.Es.Selector);
        Assert.Equal(PerCpuGs, state.Gs.Base);

        // load_segments' frame: { RCX, R11, DS, ES, FS, GS, RIP, CS | mask << 32, RFLAGS, RSP, SS } — the selectors the context named.
        ulong at = (StackFrame << 12) + (frameSp & 0xFFF);
        ulong[] frame = [.. Enumerable.Range(0, 11).Select(i => _memory.Read<ulong>(at + ((ulong)i * 8)))];
        Assert.Equal([0xC0C0UL, 0x1111, 0x63, 0x2B, 0, 0x1234, KernelRip, 0x10, 0x202, KernelRsp, 0x1B], frame);
        Assert.Equal(1, _memory.Read<byte>(SharedInfo + 64 + 1));   // masked now, as registered
        Assert.Equal(1, _xen.Counters["pv-failsafe"]);
        Assert.Null(_host.Control.StopReason);
    }

    [Fact]
    public void AContextWhoseDataSelectorsDoNotLoad_WithoutAFailsafeCallback_CrashesTheDomainWithTheReason()
    {
        byte[] context = LinuxContext();
        PutWord(context, 520 + 176, 0x63);
        Put(context, 5120, 0);                               // no failsafe callback
        _memory.Write(Context, context);
        Assert.Equal(0, Op(VcpuOpInitialise, 1, Context));
        Assert.Equal(0, Op(VcpuOpUp, 1));
        Assert.Empty(_host.VcpuControls);                    // the vCPU never runs
        Assert.Equal(MachineStopReason.Crashed, _host.Control.StopReason);
        Assert.Contains("no failsafe callback", _host.Control.StopDetail, StringComparison.Ordinal);
    }

    [Fact]
    public void AFailsafeFrameOnAnUnmappedStack_CrashesTheDomain()
    {
        byte[] context = LinuxContext();
        PutWord(context, 520 + 176, 0x63);
        _memory.Write(Context, context);
        Assert.Equal(0, Op(VcpuOpInitialise, 1, Context));  // the L4 maps nothing: the frame cannot be written
        Assert.Equal(0, Op(VcpuOpUp, 1));
        Assert.Empty(_host.VcpuControls);
        Assert.Contains("failsafe callback frame", _host.Control.StopDetail, StringComparison.Ordinal);
    }

    [Fact]
    public void FlushesForAllVcpus_ReachEveryVcpu_ALocalFlushOnlyTheCaller()
    {
        foreach ((PvMmuextCommand command, bool everywhere) in new[]
        {
            (PvMmuextCommand.TlbFlushLocal, false), (PvMmuextCommand.TlbFlushAll, true),
            (PvMmuextCommand.TlbFlushMulti, true), (PvMmuextCommand.InvlpgAll, true),
        })
        {
            _host.RemoteFlushes.Clear();
            _memory.Write(Ops, (uint)command);
            _memory.Write(Ops + 8, 0xFFFF_FFFF_8100_0000UL);
            _memory.Write(Ops + 16, 0UL);
            Assert.Equal(0, _cpu.Call(_xen, HypercallOp.MmuextOp, Ops, 1, 0, XenDomain.DomidSelf));
            Assert.Equal(everywhere, _host.RemoteFlushes.Any(f => f.Vcpu == 1));
        }
    }

    [Fact]
    public void RandomContexts_AreRefusedWithAnErrno_NeverAHostException()
    {
        var random = new Random(12);
        int[] errnos = [XenErrno.EINVAL, XenErrno.EOPNOTSUPP, XenErrno.EEXIST];
        for (int round = 0; round < 3000; round++)
        {
            byte[] context = LinuxContext();
            for (int i = random.Next(1, 12); i > 0; i--)
            {
                // Mostly Linux's context with a few fields spoiled, so the later checks are reached too.
                int offset = random.Next(0, PvVcpuGuestContext.Size - 8) & ~7;
                Put(context, offset, random.Next(4) switch
                {
                    0 => (ulong)random.NextInt64(),
                    1 => (ulong)random.Next(0, 0x400) << (random.Next(2) * 12),
                    2 => (ulong)random.Next(0, 0x10000),
                    _ => 0,
                });
            }

            _memory.Write(Context, context);
            long rc = Op(VcpuOpInitialise, 1, Context);
            Assert.True(rc == 0 || errnos.Contains((int)-rc), $"round {round}: {rc}");
        }

        Assert.Empty(_host.VcpuControls);
    }

    private const ulong StackFrame = 0x104;

    /// <summary>Maps KernelRsp's page (frame 0x104) writable in vCPU 1's kernel L4 by plain entries, validated when the L4 takes its type.</summary>
    private void MapKernelStack()
    {
        const ulong Flags = 7;                               // present, writable, user (a PV kernel runs at CPL 3)
        _memory.Write((KernelL4 << 12) + (511 * 8), (0x101UL << 12) | Flags);
        _memory.Write((0x101UL << 12) + (510 * 8), (0x102UL << 12) | Flags);
        _memory.Write((0x102UL << 12) + (((KernelRsp >> 21) & 511) * 8), (0x103UL << 12) | Flags);
        _memory.Write((0x103UL << 12) + (((KernelRsp >> 12) & 511) * 8), (StackFrame << 12) | Flags);
    }

    private void AssertRefused(int errno, Action<byte[]> spoil)
    {
        byte[] context = LinuxContext();
        spoil(context);
        _memory.Write(Context, context);
        Assert.Equal(-errno, Op(VcpuOpInitialise, 1, Context));
        Assert.Equal(PvPageType.None, Tables.TypeInUse(GuestGdt));
        Assert.Equal(PvPageType.None, Tables.TypeInUse(KernelL4));
        Assert.Equal(0UL, _xen.PvPaging(1).KernelBase);
        Assert.Empty(_host.VcpuControls);
    }

    /// <summary>What Linux's cpu_initialize_context (arch/x86/xen/smp_pv.c) hands Xen, on a zeroed context.</summary>
    private static byte[] LinuxContext()
    {
        var c = new byte[PvVcpuGuestContext.Size];
        Put(c, 512, 4);                                    // VGCF_IN_KERNEL
        Put(c, 520 + 128, KernelRip);                      // user_regs.rip: asm_cpu_bringup_and_idle
        PutWord(c, 520 + 136, 0x10);                       // __KERNEL_CS
        Put(c, 520 + 144, 0x1000);                         // eflags: IOPL_RING1
        Put(c, 520 + 152, KernelRsp);
        PutWord(c, 520 + 160, 0x18);                       // __KERNEL_DS
        PutWord(c, 520 + 168, 0x2B);                       // __USER_DS
        PutWord(c, 520 + 176, 0x2B);
        c[720 + (14 * 16)] = 14;                           // trap_ctxt[14]: the page-fault handler
        Put(c, 720 + (14 * 16) + 8, 0xFFFF_FFFF_8100_1000);
        Put(c, 4832, GuestGdt);                            // gdt_frames[0]
        Put(c, 4960, 16);                                  // GDT_ENTRIES
        Put(c, 4968, 0x18);                                // kernel_ss
        Put(c, 4976, 0xFFFF_FFFF_8200_4000);               // kernel_sp
        Put(c, 4984 + 24, KernelL4 << 12);                 // ctrlreg[3] = xen_pfn_to_cr3(mfn)
        Put(c, 5112, 0xFFFF_FFFF_8100_2000);               // event callback
        Put(c, 5120, 0xFFFF_FFFF_8100_3000);               // failsafe callback
        Put(c, 5152, PerCpuGs);                            // gs_base_kernel: per_cpu_offset(cpu)
        return c;
    }

    private static void Put(byte[] context, int offset, ulong value) => BitConverter.TryWriteBytes(context.AsSpan(offset), value);

    private static void PutWord(byte[] context, int offset, ushort value) => BitConverter.TryWriteBytes(context.AsSpan(offset), value);

    private long Op(int command, ulong vcpu, ulong arg = 0) => _cpu.Call(_xen, HypercallOp.VcpuOp, (ulong)command, vcpu, arg);
}
