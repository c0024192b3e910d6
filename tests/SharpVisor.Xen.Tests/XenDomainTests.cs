using System.Text;
using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

public sealed class XenDomainTests : IDisposable
{
    private const ulong SharedInfoGfn = 0x10;
    private const ulong Scratch = 0x20000;
    private const ulong CallbackVector = 0xF3;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(16 << 20);
    private readonly FakeHypervisorHost _host = new();
    private readonly List<string> _log = [];
    private readonly List<byte> _console = [];
    private readonly XenDomain _xen;
    private readonly FakeHypercallContext _cpu;

    public XenDomainTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions
        {
            VcpuCount = 2,
            MemoryMap = [new XenMemoryMapEntry(0, 0x9FC00, 1), new XenMemoryMapEntry(0x100000, (16 << 20) - 0x100000, 1)],
            Log = _log.Add,
            ConsoleOutput = b => _console.AddRange(b.ToArray()),
        });
        _xen.Connect(_host);
        _cpu = new FakeHypercallContext(_memory);
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void Cpuid_AnnouncesXen417WithTheHypercallMsr()
    {
        Assert.True(_xen.TryGetCpuid(1, 0x4000_0000, 0, out CpuidResult signature));
        string vendor = Encoding.ASCII.GetString(BitConverter.GetBytes(signature.Ebx).Concat(BitConverter.GetBytes(signature.Ecx)).Concat(BitConverter.GetBytes(signature.Edx)).ToArray());
        Assert.Equal("XenVMMXenVMM", vendor);
        Assert.Equal(0x4000_0004u, signature.Eax);
        Assert.True(_xen.TryGetCpuid(0, 0x4000_0001, 0, out CpuidResult version));
        Assert.Equal((4u << 16) | 17, version.Eax);
        Assert.True(_xen.TryGetCpuid(0, 0x4000_0002, 0, out CpuidResult msr));
        Assert.Equal(0x4000_0000u, msr.Ebx);
        Assert.True(_xen.TryGetCpuid(1, 0x4000_0004, 0, out CpuidResult hvm));
        Assert.Equal(1u, hvm.Ebx);                      // vCPU id
        Assert.NotEqual(0u, hvm.Eax & (1u << 6));       // upcall vector
        Assert.False(_xen.TryGetCpuid(0, 0x4000_0005, 0, out _));
    }

    [Theory]
    [InlineData(HypercallInstruction.Vmcall, 0xC1)]
    [InlineData(HypercallInstruction.Vmmcall, 0xD9)]
    public void HypercallPageMsr_WritesOneStubPerOp(HypercallInstruction instruction, byte modrm)
    {
        _host.Instruction = instruction;
        Assert.True(_xen.TryWriteMsr(0, 0x4000_0000, 0x5000, out bool accepted));
        Assert.True(accepted);
        Span<byte> stub = _memory.GetSpan(0x5000 + (17 * 32), 9);
        Assert.Equal(new byte[] { 0xB8, 17, 0, 0, 0, 0x0F, 0x01, modrm, 0xC3 }, stub.ToArray());
        Assert.Equal(new byte[] { 0x0F, 0x0B }, _memory.GetSpan(0x5000 + (23 * 32), 2).ToArray());   // iret: ud2
        Assert.True(_xen.TryWriteMsr(0, 0x4000_0000, 0x7FFF_F000_0000, out accepted));
        Assert.False(accepted);   // outside RAM: #GP
        Assert.False(_xen.TryWriteMsr(0, 0x10, 0, out _));
    }

    [Fact]
    public void UnknownOps_AreEnosysCountedAndLoggedOnce()
    {
        Assert.Equal(-38, _cpu.Call(_xen, HypercallOp.Domctl));
        Assert.Equal(-38, _cpu.Call(_xen, HypercallOp.Domctl));
        Assert.Equal(-38, _cpu.Call(_xen, (HypercallOp)999));
        Assert.Equal(3, _xen.Counters["hypercall-enosys"]);
        Assert.Single(_log, l => l.Contains("Domctl", StringComparison.Ordinal));
    }

    [Fact]
    public void XenVersion_AndFeatures()
    {
        Assert.Equal((4 << 16) | 17, _cpu.Call(_xen, HypercallOp.XenVersion, 0));
        _memory.Write<uint>(Scratch, 0);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.XenVersion, 6, Scratch));
        uint features = _memory.Read<uint>(Scratch + 4);
        Assert.NotEqual(0u, features & (1u << 8));   // hvm_callback_vector
        Assert.Equal(4096, _cpu.Call(_xen, HypercallOp.XenVersion, 7));
    }

    [Fact]
    public void UserModeAndBadPointers_GetXenErrnos()
    {
        _cpu.Cpl = 3;
        Assert.Equal(-1, _cpu.Call(_xen, HypercallOp.XenVersion, 0));
        _cpu.Cpl = 0;
        Assert.Equal(-14, _cpu.Call(_xen, HypercallOp.XenVersion, 6, 0xFFFF_FFFF_0000));
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.XenVersion, ulong.MaxValue));
    }

    [Fact]
    public void EventChannels_IpiSendRaisesTheUpcallUnlessMasked()
    {
        MapSharedInfo();
        Assert.False(_xen.TryGetPendingUpcall(0, out _));
        SetCallbackVector();

        _memory.Write<uint>(Scratch, 0);   // bind_ipi { vcpu 0 }
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 7, Scratch));
        uint port = _memory.Read<uint>(Scratch + 4);
        Assert.True(port > 0);

        ulong shared = SharedInfoGfn << 12;
        _memory.Write<ulong>(shared + 2560, 1UL << (int)port);   // masked
        Send(port);
        Assert.NotEqual(0UL, _memory.Read<ulong>(shared + 2048) & (1UL << (int)port));
        Assert.False(_xen.TryGetPendingUpcall(0, out _));

        _memory.Write<uint>(Scratch, port);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 9, Scratch));   // unmask
        Assert.Equal(1UL, _memory.Read<ulong>(shared + 8));   // selector word 0
        Assert.True(_xen.TryGetPendingUpcall(0, out byte vector));
        Assert.Equal((byte)CallbackVector, vector);
        Assert.Contains(0, _host.Wakes);

        // The guest acknowledges: the level drops.
        _memory.Write<byte>(shared, 0);
        Assert.False(_xen.TryGetPendingUpcall(0, out _));

        // The names `top` and the daemon's metrics show (the VMM prefixes them with xen-): hypercalls in
        // total and by op, event_channel_op by sub-command, sends, upcalls (the one 0→1 edge).
        Assert.Equal(5, _xen.Counters["hypercalls"]);                    // shared_info, the vector, bind_ipi, send, unmask
        Assert.Equal(1, _xen.Counters["MemoryOp"]);
        Assert.Equal(3, _xen.Counters["EventChannelOp"]);
        Assert.Equal(1, _xen.Counters["HvmOp"]);
        Assert.Equal(1, _xen.Counters["evtchn-4"]);
        Assert.Equal(1, _xen.Counters["evtchn-sends"]);
        Assert.Equal(1, _xen.Counters["upcalls"]);
    }

    [Fact]
    public void EventChannels_LoopbackInterdomainAndStatus()
    {
        MapSharedInfo();
        SetCallbackVector();
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<ushort>(Scratch + 2, XenDomain.DomidSelf);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 6, Scratch));   // alloc_unbound
        uint unbound = _memory.Read<uint>(Scratch + 4);

        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, unbound);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 0, Scratch));   // bind_interdomain
        uint local = _memory.Read<uint>(Scratch + 8);
        Assert.NotEqual(unbound, local);

        Send(local);
        Assert.NotEqual(0UL, _memory.Read<ulong>((SharedInfoGfn << 12) + 2048) & (1UL << (int)unbound));

        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, unbound);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 5, Scratch));   // status
        Assert.Equal(2u, _memory.Read<uint>(Scratch + 8));                           // interdomain
        Assert.Equal(local, _memory.Read<uint>(Scratch + 20));

        _memory.Write<uint>(Scratch, 4000);
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.EventChannelOp, 4, Scratch));  // send on a closed port
        Assert.Equal(-38, _cpu.Call(_xen, HypercallOp.EventChannelOp, 11, Scratch)); // init_control: 2-level only
    }

    [Fact]
    public void VirqTimer_FiresThroughTheSingleShotTimer()
    {
        MapSharedInfo();
        SetCallbackVector();
        _memory.Write<uint>(Scratch, 0);       // VIRQ_TIMER
        _memory.Write<uint>(Scratch + 4, 0);   // vCPU 0
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 1, Scratch));
        uint port = _memory.Read<uint>(Scratch + 8);
        Assert.Equal(-17, _cpu.Call(_xen, HypercallOp.EventChannelOp, 1, Scratch));  // bound twice

        _host.Tsc = 2_000_000;   // 1 ms of system time
        _memory.Write<ulong>(Scratch, 500_000);
        _memory.Write<uint>(Scratch + 8, 1);   // VCPU_SSHOTTMR_future
        Assert.Equal(-62, _cpu.Call(_xen, HypercallOp.VcpuOp, 8, 0, Scratch));       // in the past: -ETIME
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.SetTimerOp, 1_500_000));
        _host.Tsc = 4_000_000;
        Assert.True(SpinWait.SpinUntil(() => _xen.TryGetPendingUpcall(0, out _), TimeSpan.FromSeconds(5)));
        Assert.NotEqual(0UL, _memory.Read<ulong>((SharedInfoGfn << 12) + 2048) & (1UL << (int)port));
    }

    [Fact]
    public void PvClock_ScaleTurnsTicksIntoNanoseconds()
    {
        (uint mul, sbyte shift) = PvClock.Scale(2_000_000_000);
        Assert.Equal(1_000_000UL, PvClock.Apply(2_000_000, mul, shift));
        (mul, shift) = PvClock.Scale(3_123_456_789);
        Assert.InRange(PvClock.Apply(3_123_456_789, mul, shift), 999_999_000UL, 1_000_001_000UL);

        MapSharedInfo();
        ulong time = (SharedInfoGfn << 12) + 32;
        Assert.Equal(0u, _memory.Read<uint>(time) & 1);   // an even version: complete
        Assert.Equal(PvClock.Scale(2_000_000_000).Multiplier, _memory.Read<uint>(time + 24));
    }

    [Fact]
    public void RegisterVcpuInfo_MovesTheSlotAndMarksEverythingPending()
    {
        MapSharedInfo();
        SetCallbackVector();
        _memory.Write<ulong>(Scratch, 0x30);
        _memory.Write<uint>(Scratch + 8, 64);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.VcpuOp, 10, 1, Scratch));
        Assert.Equal(ulong.MaxValue, _memory.Read<ulong>(0x30040 + 8));
        Assert.True(_xen.TryGetPendingUpcall(1, out _));
        _memory.Write<uint>(Scratch + 8, 4090);
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.VcpuOp, 10, 1, Scratch));
        Assert.Equal(-2, _cpu.Call(_xen, HypercallOp.VcpuOp, 10, 7, Scratch));   // no such vCPU
    }

    [Fact]
    public void RegisterVcpuInfo_CarriesTheCurrentContentsAcross_SoAMaskedVcpuStaysMasked()
    {
        // A PV kernel registers its per-CPU vcpu_info with events masked (IRQs off): the move must
        // not unmask them, or an upcall arrives before the kernel can take it (Xen copies the slot).
        MapSharedInfo();
        ulong slot = (SharedInfoGfn << 12) + (1 * SharedInfoLayout.VcpuInfoSize);
        _memory.Write<byte>(slot + SharedInfoLayout.UpcallMask, 1);
        _memory.Write<ulong>(Scratch, 0x30);
        _memory.Write<uint>(Scratch + 8, 128);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.VcpuOp, 10, 1, Scratch));
        Assert.Equal(1, _memory.Read<byte>(0x30080 + SharedInfoLayout.UpcallMask));
        Assert.Equal(1, _memory.Read<byte>(0x30080 + SharedInfoLayout.UpcallPending));
        Assert.Equal(ulong.MaxValue, _memory.Read<ulong>(0x30080 + SharedInfoLayout.PendingSelector));
    }

    [Fact]
    public void GrantFrames_MapInRamOrOutsideItButNeverInTheMmioHole()
    {
        Assert.Equal(0, GrantMap(0, 0x40));                 // a RAM frame
        Assert.Equal(0, GrantMap(1, 0x107FFF));             // above 4 GiB: a page of its own
        Assert.Equal(0x107FFF000UL, _xen.GetGrantFrame(1));
        Assert.True(_memory.IsValid(0x107FFF000, 4096));
        Assert.Equal(16UL << 20, _memory.RamSize);          // not counted as RAM
        Assert.Equal(-22, GrantMap(2, 0xFEE00));            // the local APIC page
        Assert.Equal(-22, GrantMap(5, 0x41));               // frames are mapped in order
        Assert.Equal(-22, GrantMap(64, 0x42));              // beyond the table

        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.GrantTableOp, 6, Scratch, 1));   // query_size
        Assert.Equal(2u, _memory.Read<uint>(Scratch + 4));
        Assert.Equal((uint)XenDomain.MaxGrantFrames, _memory.Read<uint>(Scratch + 8));
    }

    [Fact]
    public void MemoryMap_AndConsoleIo()
    {
        _memory.Write<uint>(Scratch, 8);
        _memory.Write<ulong>(Scratch + 8, Scratch + 0x100);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.MemoryOp, 9, Scratch));
        Assert.Equal(2u, _memory.Read<uint>(Scratch));
        Assert.Equal(0x100000UL, _memory.Read<ulong>(Scratch + 0x100 + 20));
        _memory.Write<uint>(Scratch, 1);
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.MemoryOp, 9, Scratch));

        _memory.Write(Scratch, "hello\n"u8);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.ConsoleIo, 0, 6, Scratch));
        Assert.Equal("hello\n", Encoding.ASCII.GetString(_console.ToArray()));
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.ConsoleIo, 0, 1UL << 40, Scratch));
    }

    [Theory]
    [InlineData(0u, MachineStopReason.PowerOff)]
    [InlineData(1u, MachineStopReason.Reset)]
    [InlineData(3u, MachineStopReason.Crashed)]
    public void SchedShutdown_StopsTheMachineWithTheReason(uint reason, MachineStopReason expected)
    {
        _memory.Write(Scratch, reason);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.SchedOp, 2, Scratch));
        Assert.Equal(expected, _host.Control.StopReason);
        Assert.Equal(reason, _xen.ShutdownReason);
    }

    [Fact]
    public void SchedBlock_HaltsUntilAnUpcall()
    {
        MapSharedInfo();
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.SchedOp, 1));
        Assert.True(_cpu.Halted);
    }

    [Fact]
    public void HvmParams_GuestSetsOnlyTheCallback()
    {
        SetCallbackVector();
        Assert.Equal(CallbackVector | (2UL << 56), _xen.GetParam(HvmParam.CallbackIrq));
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, HvmParam.StorePfn);
        _memory.Write<ulong>(Scratch + 8, 0x1234);
        Assert.Equal(-1, _cpu.Call(_xen, HypercallOp.HvmOp, 0, Scratch));
        _memory.Write<uint>(Scratch + 4, HvmParam.CallbackIrq);
        _memory.Write<ulong>(Scratch + 8, 3UL << 56);   // no such callback type
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.HvmOp, 0, Scratch));
        _memory.Write<ulong>(Scratch + 8, (2UL << 56) | 8);   // an exception vector
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.HvmOp, 0, Scratch));
        _memory.Write<ulong>(Scratch + 8, 1);   // GSI 1: recorded (Linux's per-vCPU-vector trick)
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.HvmOp, 0, Scratch));
        _memory.Write<uint>(Scratch + 4, 1000);
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.HvmOp, 1, Scratch));
    }

    [Fact]
    public void CallbackViaGsiOrPciIntx_FollowsVcpu0sUpcallPendingUnlessAPerVcpuVectorIsSet()
    {
        var lines = new FakeInterruptController();
        _xen.AttachInterruptController(lines, (bus, devfn, intx) => bus == 0 && devfn == (3 << 3) && intx == 0 ? 19u : null);
        MapSharedInfo();
        ulong shared = SharedInfoGfn << 12;
        _memory.Write<uint>(Scratch, 0);   // bind_ipi { vcpu 0 }
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 7, Scratch));
        uint port = _memory.Read<uint>(Scratch + 4);
        void Acknowledge()
        {
            _memory.Write<byte>(shared, 0);
            _memory.Write<ulong>(shared + 8, 0);
            _memory.Write<ulong>(shared + 2048, 0);
        }

        // Type 0, GSI 9: asserted while vCPU 0 has an upcall pending, lowered once the guest cleared it.
        SetCallbackVia(9);
        Assert.Equal(9u, _xen.CallbackGsi);
        Send(port);
        Assert.Equal([(9u, true)], lines.Changes);
        Assert.False(_xen.TryGetPendingUpcall(0, out _));                  // no vector: the GSI carries it
        Acknowledge();                                                     // the guest's handler: upcall_pending, selector, port
        Assert.False(_xen.TryGetPendingUpcall(0, out _));
        Assert.Equal([(9u, true), (9u, false)], lines.Changes);

        // Type 1, PCI INTx of 00:03.0 INTA#: the GSI the bus routes it to; the old line stays low.
        Send(port);
        SetCallbackVia((1UL << 56) | (3UL << 11));
        Assert.Equal(19u, _xen.CallbackGsi);
        Assert.Equal([(9u, true), (9u, false), (9u, true), (9u, false), (19u, true)], lines.Changes);
        Acknowledge();
        _xen.TryGetPendingUpcall(0, out _);
        Assert.Equal((19u, false), lines.Changes[^1]);

        // An INTx nothing is routed to, or GSI 0: no callback (as in Xen); a per-vCPU vector takes precedence over a GSI.
        SetCallbackVia((1UL << 56) | (4UL << 11));
        Assert.Null(_xen.CallbackGsi);
        SetCallbackVia(0);
        Assert.Null(_xen.CallbackGsi);
        SetCallbackVia(1);                                                 // Linux's "trick toolstack" GSI 1
        _memory.Write<uint>(Scratch, 0);
        _memory.Write<byte>(Scratch + 4, 0xF4);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.HvmOp, 23, Scratch));  // set_evtchn_upcall_vector(vCPU 0, 0xF4)
        int before = lines.Changes.Count;
        Send(port);
        Assert.True(_xen.TryGetPendingUpcall(0, out byte vector));
        Assert.Equal(0xF4, vector);
        Assert.Equal(before, lines.Changes.Count);                         // GSI 1 (the keyboard's) never moves
    }

    /// <summary>Random op numbers and arguments (pointers into and out of RAM): every answer is a result or a Xen errno, never a host exception.</summary>
    [Fact]
    public void GeneratedHypercalls_NeverThrow()
    {
        MapSharedInfo();
        SetCallbackVector();
        var random = new Random(11);
        ulong[] interesting = [0, 1, 2, 7, 0x7FF0, 4095, 4096, (16 << 20) - 8, 16 << 20, ulong.MaxValue, 1UL << 63];
        for (int i = 0; i < 20_000; i++)
        {
            HypercallOp op = random.Next(4) == 0 ? (HypercallOp)random.Next(64) : (HypercallOp)new[] { 12, 15, 17, 18, 20, 24, 29, 32, 34 }[random.Next(9)];
            ulong Next() => random.Next(3) switch
            {
                0 => interesting[random.Next(interesting.Length)],
                1 => (ulong)random.Next(16),
                _ => Scratch + (ulong)random.Next(0x1000),
            };

            // Fill the scratch page with noise so structures hold random values too.
            random.NextBytes(_memory.GetSpan(Scratch, 0x1100));
            _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
            ulong cmd = (ulong)random.Next(14);
            if (op == HypercallOp.SchedOp && cmd is 2 or 4 or 5)
            {
                continue;   // shutdowns stop the machine: covered above
            }

            long result = _cpu.Call(_xen, op, cmd, Next(), Next(), Next(), Next());
            Assert.True(result >= 0 || result >= -95, $"op {op} cmd {cmd}: {result}");
        }
    }

    private void MapSharedInfo()
    {
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, 0);   // XENMAPSPACE_shared_info
        _memory.Write<ulong>(Scratch + 8, 0);
        _memory.Write<ulong>(Scratch + 16, SharedInfoGfn);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.MemoryOp, 7, Scratch));
        Assert.Equal(SharedInfoGfn << 12, _xen.SharedInfoAddress);
    }

    [Fact]
    public void GrantSetupTable_ListsTheMappedFramesAndRefusesTooMany()
    {
        Assert.Equal(0, GrantMap(0, 0x40));
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, 2);             // nr_frames
        _memory.Write<short>(Scratch + 8, 99);
        _memory.Write<ulong>(Scratch + 16, Scratch + 64); // frame_list
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.GrantTableOp, 2, Scratch, 1));
        Assert.Equal((short)0, _memory.Read<short>(Scratch + 8));
        Assert.Equal(0x40UL, _memory.Read<ulong>(Scratch + 64));
        Assert.Equal(ulong.MaxValue, _memory.Read<ulong>(Scratch + 72));   // frame 1 is not mapped

        _memory.Write<uint>(Scratch + 4, XenDomain.MaxGrantFrames + 1);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.GrantTableOp, 2, Scratch, 1));
        Assert.Equal((short)-1, _memory.Read<short>(Scratch + 8));        // GNTST_general_error

        _memory.Write<uint>(Scratch + 4, 1);
        _memory.Write<ulong>(Scratch + 16, 0xFFFF_FFFF_0000);             // a list the guest cannot give
        Assert.Equal(-14, _cpu.Call(_xen, HypercallOp.GrantTableOp, 2, Scratch, 1));
    }

    [Fact]
    public void GrantFrames_GoIntoThePlatformBarOnlyWhileItDecodes()
    {
        const ulong Bar = 0xF000_0000;
        Assert.Equal(-22, GrantMap(0, Bar >> 12));                      // the MMIO hole: refused

        _xen.SetPlatformMmio(Bar, 16 << 20);
        Assert.Equal(0, GrantMap(0, Bar >> 12));
        Assert.Equal(0, GrantMap(1, (Bar >> 12) + 1));
        Assert.Equal(Bar + 4096, _xen.GetGrantFrame(1));
        _memory.Write<uint>(Bar + 4096, 0x1234);                         // a page of its own
        Assert.Equal(0x1234u, _memory.Read<uint>(Bar + 4096));
        Assert.Equal(-22, GrantMap(2, (Bar + (16 << 20)) >> 12));        // just past the BAR

        _xen.SetPlatformMmio(0, 0);                                      // decoding off
        Assert.Equal(-22, GrantMap(2, (Bar >> 12) + 2));
    }

    [Fact]
    public void Balloon_GivesFramesBackOnceAndPopulateReturnsThemZeroed()
    {
        const ulong Frame = 0x400;
        _memory.Write<ulong>(Frame << 12, 0xDEAD_BEEF);
        long pages = (long)(_memory.RamSize >> 12);
        Assert.Equal(2, Reservation(1, [Frame, Frame + 1]));             // decrease_reservation
        Assert.Equal(0UL, _memory.Read<ulong>(Frame << 12));               // released: reads as zeros
        Assert.Equal(2, _xen.BalloonedPages);
        Assert.Equal(pages - 2, ReservationQuery(3));                      // current_reservation
        Assert.Equal(pages, ReservationQuery(4));                          // maximum_reservation

        // The batch stops at the first frame that cannot go: given back already, not RAM, a ring.
        Assert.Equal(1, Reservation(1, [Frame + 2, Frame]));
        Assert.Equal(0, Reservation(1, [0x10_0000_0000]));
        _xen.SetParam(HvmParam.StorePfn, Frame + 9);
        Assert.Equal(0, Reservation(1, [Frame + 9]));
        Assert.Equal(3, _xen.BalloonedPages);

        _memory.Write<ulong>((Frame + 5) << 12, 0x1234);
        Assert.Equal(2, Reservation(6, [Frame, Frame + 5]));               // populate_physmap
        Assert.Equal(0UL, _memory.Read<ulong>((Frame + 5) << 12));
        Assert.Equal(2, _xen.BalloonedPages);
        Assert.Equal(0, Reservation(0, [Frame + 1]));                      // increase: no pool to give from
        Assert.Equal(-22, _cpu.Call(_xen, HypercallOp.MemoryOp, 1, WriteReservation([Frame + 3], order: 1)));
    }

    private long Reservation(int command, ulong[] frames) => _cpu.Call(_xen, HypercallOp.MemoryOp, (ulong)command, WriteReservation(frames));

    private long ReservationQuery(int command)
    {
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        return _cpu.Call(_xen, HypercallOp.MemoryOp, (ulong)command, Scratch);
    }

    /// <summary>struct xen_memory_reservation at Scratch, its extent list at Scratch + 0x100.</summary>
    private ulong WriteReservation(ulong[] frames, uint order = 0)
    {
        for (int i = 0; i < frames.Length; i++)
        {
            _memory.Write(Scratch + 0x100 + ((ulong)i * 8), frames[i]);
        }

        _memory.Write(Scratch, Scratch + 0x100);
        _memory.Write(Scratch + 8, (ulong)frames.Length);
        _memory.Write(Scratch + 16, order);
        _memory.Write<uint>(Scratch + 20, 0);
        _memory.Write<ushort>(Scratch + 24, XenDomain.DomidSelf);
        return Scratch;
    }

    private long GrantMap(ulong index, ulong gpfn)
    {
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, 1);   // XENMAPSPACE_grant_table
        _memory.Write(Scratch + 8, index);
        _memory.Write(Scratch + 16, gpfn);
        return _cpu.Call(_xen, HypercallOp.MemoryOp, 7, Scratch);
    }

    private void SetCallbackVia(ulong value)
    {
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, HvmParam.CallbackIrq);
        _memory.Write<ulong>(Scratch + 8, value);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.HvmOp, 0, Scratch));
    }

    private void SetCallbackVector()
    {
        _memory.Write<ushort>(Scratch, XenDomain.DomidSelf);
        _memory.Write<uint>(Scratch + 4, HvmParam.CallbackIrq);
        _memory.Write<ulong>(Scratch + 8, CallbackVector | (2UL << 56));
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.HvmOp, 0, Scratch));
    }

    private void Send(uint port)
    {
        _memory.Write(Scratch + 0x800, port);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 4, Scratch + 0x800));
    }
}
