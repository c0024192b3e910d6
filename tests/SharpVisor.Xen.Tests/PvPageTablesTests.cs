using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// Direct paging's type discipline: page-table hierarchies built in machine memory, pinned,
/// updated and attacked (writable mappings of tables, foreign frames, loops of tables, unpinning
/// a table in use), each refusal with Xen's errno and counted — and the invariant checked by
/// recounting every reference from the tables themselves.
/// </summary>
public sealed class PvPageTablesTests : IDisposable
{
    // 64 machine frames: the domain owns 0..47, the hypervisor 48..63.
    private const int MachineFrames = 64;
    private const int DomainFrames = 48;
    private const ulong HypervisorFrame = 50;
    private const ulong P = PvPte.Present;
    private const ulong Rw = PvPte.Writable;
    private const ulong M2pEntry = (HypervisorFrame << 12) | PvPte.Present | PvPte.User;

    // A hierarchy: L4 a → L3 b → L2 c → L1 d → e (writable), f (read-only); VA 0 maps e, VA 0x1000 f.
    private const ulong A = 3;
    private const ulong B = 7;
    private const ulong C = 11;
    private const ulong D = 13;
    private const ulong E = 17;
    private const ulong F = 19;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(2 << 20);   // the smallest RAM; the machine is its first 64 frames
    private readonly PvPageTables _tables;
    private readonly PvVcpuPaging _vcpu = new(0);
    private readonly RecordingHost _host = new();

    public PvPageTablesTests()
    {
        var p2m = new PvPhysToMachine([.. Enumerable.Range(0, DomainFrames).Select(i => (ulong)i)], MachineFrames, seed: 12);
        _tables = new PvPageTables(_memory, p2m, new ExitCounters(), M2pEntry);
        _tables.Connect(_host);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void P2m_IsAPermutationWithNoFixedPoint_AndM2pItsInverse()
    {
        PvPhysToMachine map = _tables.PhysToMachine;
        Assert.Equal(DomainFrames, map.PageCount);
        Assert.Equal(Enumerable.Range(0, DomainFrames).Select(i => (ulong)i), map.P2m.ToArray().Order());
        for (ulong pfn = 0; pfn < DomainFrames; pfn++)
        {
            Assert.NotEqual(pfn, map.ToMachine(pfn));
            Assert.Equal(pfn, map.ToPhysical(map.ToMachine(pfn)));
        }

        Assert.Equal(PvPhysToMachine.InvalidEntry, map.ToPhysical(HypervisorFrame));
        Assert.Equal(PvPhysToMachine.InvalidEntry, map.ToPhysical(1UL << 40));
        var again = new PvPhysToMachine([.. Enumerable.Range(0, DomainFrames).Select(i => (ulong)i)], MachineFrames, seed: 12);
        Assert.Equal(map.P2m.ToArray(), again.P2m.ToArray());
    }

    [Fact]
    public void PinL4_ValidatesTheHierarchy_TypesEachLevel_AndAdjustsEntries()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));

        AssertType(A, PvPageType.L4, 1);
        AssertType(B, PvPageType.L3, 1);
        AssertType(C, PvPageType.L2, 1);
        AssertType(D, PvPageType.L1, 1);
        AssertType(E, PvPageType.Writable, 1);
        Assert.Equal(0, _tables.Frame(F).TypeCount);   // read-only mapping: a reference, no type
        Assert.Equal(1, _tables.Frame(F).ReferenceCount);
        Assert.True(_tables.Frame(A).Pinned);

        // 64-bit PV: the kernel runs at CPL 3, so entries become user-accessible; kernel L1 entries carry _PAGE_GUEST_KERNEL.
        Assert.Equal((B << 12) | P | Rw | PvPte.User, Entry(A, 0));
        Assert.Equal((E << 12) | P | Rw | PvPte.User | PvPte.GuestKernel, Entry(D, 0));
        // Xen's own slot 256: the M2P, whatever the guest had written there.
        Assert.Equal(M2pEntry, Entry(A, 256));
        Assert.Equal(0UL, Entry(A, 257));
        Assert.Equal(1, _tables.Counters["pv-validated-l4"]);
        AssertInvariant();
    }

    [Fact]
    public void WritableMappingOfAPageTable_IsRefusedWithEbusy_ReadOnlyIsFine()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));

        Assert.Equal(-XenErrno.EBUSY, Update(D, 2, (D << 12) | P | Rw));   // the L1 itself
        Assert.Equal(-XenErrno.EBUSY, Update(D, 3, (A << 12) | P | Rw));   // the L4
        Assert.Equal(0UL, Entry(D, 2));
        Assert.Equal(2, _tables.Counters["pv-refused-l1-entry"]);

        Assert.Equal(0, Update(D, 2, (D << 12) | P));                       // Linux maps its tables read-only
        Assert.Equal(0, Update(D, 3, (A << 12) | P));
        AssertType(D, PvPageType.L1, 1);
        AssertInvariant();
    }

    [Fact]
    public void UpgradingAReadOnlyMappingOfATableToWritable_IsRefused()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        Assert.Equal(0, Update(D, 5, (C << 12) | P));
        Assert.Equal(-XenErrno.EBUSY, Update(D, 5, (C << 12) | P | Rw));
        Assert.Equal((C << 12) | P | PvPte.User | PvPte.GuestKernel, Entry(D, 5));
        AssertInvariant();
    }

    [Fact]
    public void PinningATableThatMapsItselfWritable_IsRefused_AndLeavesNothingBehind()
    {
        const ulong x = 23;
        Write(x, 0, (x << 12) | P | Rw);
        Assert.Equal(-XenErrno.EBUSY, Pin(1, x));
        Assert.Equal(0, _tables.Frame(x).TypeCount);
        Assert.Equal(0, _tables.Frame(x).ReferenceCount);
        Assert.False(_tables.Frame(x).Pinned);
        Assert.Equal(1, _tables.Counters["pv-refused-pin-invalid"]);

        // Writable mappings held by a table being validated are released when validation fails.
        const ulong y = 29;
        Write(y, 0, (E << 12) | P | Rw);
        Write(y, 1, (y << 12) | P | Rw);
        Assert.Equal(-XenErrno.EBUSY, Pin(1, y));
        Assert.Equal(0, _tables.Frame(E).TypeCount);
        Assert.Equal(0, _tables.Frame(E).ReferenceCount);
        AssertInvariant();
    }

    [Fact]
    public void ForeignAndNonexistentFrames_AreRefused()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));

        Assert.Equal(-XenErrno.EBUSY, Update(D, 4, (HypervisorFrame << 12) | P));      // the hypervisor's frame
        Assert.Equal(-XenErrno.EPERM, Update(D, 4, (1000UL << 12) | P));               // not memory: I/O space
        Assert.Equal(-XenErrno.EINVAL, Update(C, 4, (HypervisorFrame << 12) | P));     // as a table
        Assert.Equal(-XenErrno.EINVAL, Update(HypervisorFrame, 0, 0));                 // an entry in a frame not ours
        Assert.Equal(-XenErrno.EINVAL, Pin(1, HypervisorFrame));
        Assert.Equal(-XenErrno.EINVAL, Pin(1, 1UL << 40));

        // A table holding a foreign frame cannot be validated.
        const ulong t = 31;
        Write(t, 7, (HypervisorFrame << 12) | P);
        Assert.Equal(-XenErrno.EBUSY, Pin(1, t));
        Assert.Equal(0UL, Entry(D, 4));
        AssertInvariant();
    }

    [Fact]
    public void LoopsAndLevelConfusion_AreRefused()
    {
        // An L4 naming itself (a linear page table): refused, Xen's linear tables are not offered.
        const ulong l4 = 37;
        Write(l4, 1, (l4 << 12) | P);
        Assert.Equal(-XenErrno.EINVAL, Pin(4, l4));

        // L4 → L3 → the L4 again as an L2: the loop meets a frame already typed L4.
        const ulong l3 = 38;
        Write(l4, 1, (l3 << 12) | P);
        Write(l3, 0, (l4 << 12) | P);
        Assert.Equal(-XenErrno.EINVAL, Pin(4, l4));
        Assert.Equal(0, _tables.Frame(l3).TypeCount);
        Assert.Equal(0, _tables.Frame(l4).TypeCount);

        // An L1 in use cannot also be an L2, nor be named by an L3 entry.
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        Assert.Equal(-XenErrno.EINVAL, Pin(2, D));
        Assert.Equal(-XenErrno.EINVAL, Update(B, 9, (D << 12) | P));
        Assert.Equal(-XenErrno.EINVAL, Update(A, 9, (A << 12) | P));

        // Same level twice is fine: two L2 entries naming one L1.
        Assert.Equal(0, Update(C, 9, (D << 12) | P));
        AssertType(D, PvPageType.L1, 2);
        AssertInvariant();
    }

    [Fact]
    public void SetLdt_IsRecordedWithXensChecks()
    {
        // Linux's load_mm_ldt clears the LDT at boot (no entries); a page-aligned guest address is taken.
        Assert.Equal(0, Ext(PvMmuextCommand.SetLdt, 0xDEAD, 0));
        Assert.Equal(0UL, _vcpu.LdtBase);
        Assert.Equal(0, Ext(PvMmuextCommand.SetLdt, 0x7000_0000, 16));
        Assert.Equal((0x7000_0000UL, 16u), (_vcpu.LdtBase, _vcpu.LdtEntries));
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.SetLdt, 0x7000_0010, 16));             // not page-aligned
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.SetLdt, 0x7000_0000, 8193));           // too many entries
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.SetLdt, 0xFFFF_8000_0000_0000, 1));    // Xen's range
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.SetLdt, 0x0000_8000_0000_0000, 1));    // not canonical
        Assert.Equal((0x7000_0000UL, 16u), (_vcpu.LdtBase, _vcpu.LdtEntries));
    }

    [Fact]
    public void UnpinningATableInUse_KeepsItTyped_UntilTheLastUseGoes()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        Assert.Equal(0, Ext(PvMmuextCommand.NewBaseptr, A));
        Assert.Equal(A, _vcpu.KernelBase);
        Assert.Single(_host.BaseChanges);
        AssertType(A, PvPageType.L4, 2);

        Assert.Equal(0, Ext(PvMmuextCommand.UnpinTable, A));
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.UnpinTable, A));            // not pinned any more
        AssertType(A, PvPageType.L4, 1);                                                // still the CR3
        const ulong other = 41;
        Write(other, 0, (A << 12) | P | Rw);
        Assert.Equal(-XenErrno.EBUSY, Pin(1, other));                                  // so still not writable

        // A new base pointer drops the last use: the whole hierarchy is released and may be retyped.
        const ulong empty = 43;
        Assert.Equal(0, Ext(PvMmuextCommand.NewBaseptr, empty));
        Assert.Equal(0, _tables.Frame(A).TypeCount);
        Assert.Equal(0, _tables.Frame(B).TypeCount);
        Assert.Equal(0, _tables.Frame(D).TypeCount);
        Assert.Equal(0, _tables.Frame(E).TypeCount);
        Assert.Equal(0, Pin(1, other));
        AssertType(A, PvPageType.Writable, 1);
        AssertInvariant();
    }

    [Fact]
    public void PinTwice_AndPinAtAnotherLevel_AreRefused()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        Assert.Equal(-XenErrno.EINVAL, Pin(4, A));
        Assert.Equal(-XenErrno.EINVAL, Pin(3, A));
        AssertType(A, PvPageType.L4, 1);
        Assert.Equal(0, Pin(1, D));                 // an L1 in use may be pinned as an L1 too
        AssertType(D, PvPageType.L1, 2);
        AssertInvariant();
    }

    [Fact]
    public void HypervisorSlotsAndDisallowedFlags_AreRefused()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        Assert.Equal(-XenErrno.EINVAL, Update(A, 256, (B << 12) | P));
        Assert.Equal(-XenErrno.EINVAL, Update(A, 271, 0));
        Assert.Equal(M2pEntry, Entry(A, 256));
        Assert.Equal(-XenErrno.EINVAL, Update(C, 1, (E << 12) | P | PvPte.LargeOrPat));  // no superpages
        Assert.Equal(-XenErrno.EINVAL, Update(D, 1, (E << 12) | P | PvPte.CacheDisable));
        Assert.Equal(-XenErrno.EINVAL, Update(A, 1, (B << 12) | P | PvPte.Global));
        Assert.Equal(0, Update(D, 1, (F << 12) | P | PvPte.User | PvPte.Global));      // a global user mapping is fine
        Assert.Equal(3, _tables.Counters["pv-refused-bad-flags"]);
        Assert.Equal(2, _tables.Counters["pv-refused-hypervisor-slot"]);
        AssertInvariant();
    }

    [Fact]
    public void UpdatesOfPlainPages_AreOrdinaryWrites_AndClearingAnEntryReleasesIt()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));

        // A page that is no table: written as it is, no checks on the value.
        Assert.Equal(0, Update(F, 3, (HypervisorFrame << 12) | P | Rw));
        Assert.Equal((HypervisorFrame << 12) | P | Rw, Entry(F, 3));

        Assert.Equal(0, Update(D, 0, 0));
        Assert.Equal(0, _tables.Frame(E).TypeCount);
        Assert.Equal(0, _tables.Frame(E).ReferenceCount);

        // Only an unused frame can be written by mmu_update without checks: not a pinned table.
        Assert.Equal(0, Update(D, 0, (E << 12) | P | Rw));
        Assert.Equal(0, Update(D, 0, (E << 12) | P | Rw | PvPte.Dirty));            // same frame and rights: fast path
        AssertType(E, PvPageType.Writable, 1);
        AssertInvariant();
    }

    [Fact]
    public void PreserveAd_KeepsTheOldAccessedAndDirtyBits()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        Write(D, 1, (F << 12) | P | PvPte.User | PvPte.Accessed | PvPte.Dirty);   // as the CPU's walk sets them
        Assert.Equal(0, _tables.MmuUpdate(((D << 12) + 8) | PvPageTables.MmuPtUpdatePreserveAd, (F << 12) | P | PvPte.User));
        Assert.Equal((F << 12) | P | PvPte.User | PvPte.Global | PvPte.Accessed | PvPte.Dirty, Entry(D, 1));
        Assert.Equal(0, Update(D, 1, (F << 12) | P | PvPte.User));
        Assert.Equal((F << 12) | P | PvPte.User | PvPte.Global, Entry(D, 1));
        AssertInvariant();
    }

    [Fact]
    public void MachphysUpdate_ChangesTheM2pOfOwnedFramesOnly()
    {
        Assert.Equal(0, _tables.MmuUpdate((E << 12) | PvPageTables.MmuMachphysUpdate, 5));
        Assert.Equal(5UL, _tables.PhysToMachine.ToPhysical(E));
        Assert.Equal(-XenErrno.EINVAL, _tables.MmuUpdate((HypervisorFrame << 12) | PvPageTables.MmuMachphysUpdate, 5));
        Assert.Equal(PvPhysToMachine.InvalidEntry, _tables.PhysToMachine.ToPhysical(HypervisorFrame));
    }

    [Fact]
    public void UpdateVaMapping_WalksTheKernelTable_AndFlushesAsAsked()
    {
        BuildHierarchy();
        Assert.Equal(-XenErrno.EINVAL, _tables.UpdateVaMapping(_vcpu, 0x1000, 0, PvPageTables.UvmfInvlpg));   // no base pointer yet
        Assert.Equal(0, Ext(PvMmuextCommand.NewBaseptr, A));

        Assert.Equal(0, _tables.UpdateVaMapping(_vcpu, 0x2000, (E << 12) | P, PvPageTables.UvmfInvlpg));
        Assert.Equal((E << 12) | P | PvPte.User | PvPte.GuestKernel, Entry(D, 2));
        Assert.Equal((0, 0x2000UL), _host.PageFlushes.Single());
        Assert.Equal(0, _tables.UpdateVaMapping(_vcpu, 0x3000, (F << 12) | P, PvPageTables.UvmfTlbFlush | PvPageTables.UvmfAll));
        Assert.Equal(-1, _host.AllFlushes.Single());

        Assert.Equal(-XenErrno.EBUSY, _tables.UpdateVaMapping(_vcpu, 0x4000, (D << 12) | P | Rw, 0));
        Assert.Equal(-XenErrno.EINVAL, _tables.UpdateVaMapping(_vcpu, 1UL << 30, (E << 12) | P, 0));        // no L2 entry there
        Assert.Equal(-XenErrno.EINVAL, _tables.UpdateVaMapping(_vcpu, 0xFFFF_8000_0000_0000, 0, 0));      // Xen's range
        Assert.Equal(-XenErrno.EINVAL, _tables.UpdateVaMapping(_vcpu, 0x0000_8000_0000_0000, 0, 0));      // not canonical
        Assert.Single(_host.PageFlushes);
        AssertInvariant();
    }

    [Fact]
    public void ClearAndCopyPage_RefuseTablesInUse()
    {
        BuildHierarchy();
        Assert.Equal(0, Pin(4, A));
        _memory.Write((E << 12) + 100, 0xABCDUL);
        Assert.Equal(0, Ext(PvMmuextCommand.CopyPage, F, E));
        Assert.Equal(0xABCDUL, _memory.Read<ulong>((F << 12) + 100));
        Assert.Equal(0, Ext(PvMmuextCommand.ClearPage, F));
        Assert.Equal(0UL, _memory.Read<ulong>((F << 12) + 100));
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.ClearPage, D));                // an L1 in use
        Assert.NotEqual(0UL, Entry(D, 0));
        Assert.Equal(-XenErrno.EINVAL, Ext(PvMmuextCommand.ClearPage, HypervisorFrame));
        Assert.Equal(-XenErrno.EACCES, Ext(PvMmuextCommand.FlushCache, 0));
        Assert.Equal(-XenErrno.ENOSYS, Ext((PvMmuextCommand)99, 0));
    }

    /// <summary>
    /// Random page-table traffic (writes of random entries, pins, unpins, base pointers) over a
    /// few frames: whatever the outcome of each call, the recounted references match the frame
    /// table and no table in use is mapped writable.
    /// </summary>
    [Fact]
    public void RandomTraffic_NeverBreaksTheInvariant()
    {
        var random = new Random(1234);
        ulong[] frames = [.. Enumerable.Range(0, 12).Select(i => (ulong)i)];
        ulong RandomEntry()
        {
            ulong frame = random.Next(10) == 0 ? HypervisorFrame : frames[random.Next(frames.Length)];
            ulong flags = (ulong)random.Next(4) switch { 0 => 0, 1 => P, 2 => P | Rw, _ => P | Rw | PvPte.User };
            return (frame << 12) | flags;
        }

        int successes = 0;
        for (int step = 0; step < 4000; step++)
        {
            ulong frame = frames[random.Next(frames.Length)];
            int slot = random.Next(4) == 0 ? 256 : random.Next(3);
            int rc = random.Next(8) switch
            {
                0 => Pin(random.Next(1, 5), frame),
                1 => Ext(PvMmuextCommand.UnpinTable, frame),
                2 => Ext(PvMmuextCommand.NewBaseptr, frame),
                3 => Ext(PvMmuextCommand.NewUserBaseptr, random.Next(3) == 0 ? 0 : frame),
                _ => Update(frame, slot, RandomEntry()),
            };
            Assert.True(rc is 0 or -XenErrno.EINVAL or -XenErrno.EBUSY or -XenErrno.EPERM, $"step {step}: {rc}");
            successes += rc == 0 ? 1 : 0;
            if (step % 50 == 0)
            {
                AssertInvariant();
            }
        }

        AssertInvariant();
        Assert.InRange(successes, 400, 3600);
        Assert.True(_tables.Counters["pv-refused"] > 100);
    }

    /// <summary>The type/count invariant (<see cref="PvFrameTableInvariant"/>): counts match their holders, no table in use is writable, validated tables name only the domain's frames.</summary>
    private void AssertInvariant() => Assert.Null(PvFrameTableInvariant.Check(_tables, _memory, [_vcpu.KernelBase, _vcpu.UserBase], []));

    /// <summary>L4 A slot 0 → L3 B slot 0 → L2 C slot 0 → L1 D: slot 0 = E writable, slot 1 = F read-only; junk in A's slot 256.</summary>
    private void BuildHierarchy()
    {
        Write(A, 0, (B << 12) | P | Rw);
        Write(A, 256, (E << 12) | P | Rw);
        Write(B, 0, (C << 12) | P | Rw);
        Write(C, 0, (D << 12) | P | Rw);
        Write(D, 0, (E << 12) | P | Rw);
        Write(D, 1, (F << 12) | P);
    }

    private void Write(ulong mfn, int slot, ulong value) => _memory.Write((mfn << 12) + ((ulong)slot * 8), value);

    private ulong Entry(ulong mfn, int slot) => _memory.Read<ulong>((mfn << 12) + ((ulong)slot * 8));

    private int Update(ulong mfn, int slot, ulong value) => _tables.MmuUpdate((mfn << 12) + ((ulong)slot * 8), value);

    private int Pin(int level, ulong mfn) => _tables.MmuextOp(_vcpu, (PvMmuextCommand)(level - 1), mfn, 0);

    private int Ext(PvMmuextCommand command, ulong argument1, ulong argument2 = 0) => _tables.MmuextOp(_vcpu, command, argument1, argument2);

    private void AssertType(ulong mfn, PvPageType type, int count)
    {
        PvPageFrame frame = _tables.Frame(mfn);
        Assert.Equal(type, frame.Type);
        Assert.Equal(count, frame.TypeCount);
    }

    private sealed class RecordingHost : IPvMmuHost
    {
        public List<int> AllFlushes { get; } = [];

        public List<(int Vcpu, ulong Address)> PageFlushes { get; } = [];

        public List<ulong> BaseChanges { get; } = [];

        public void FlushAll(int vcpuId) => AllFlushes.Add(vcpuId);

        public void FlushPage(int vcpuId, ulong linearAddress) => PageFlushes.Add((vcpuId, linearAddress));

        public void BaseChanged(PvVcpuPaging vcpu) => BaseChanges.Add(vcpu.KernelBase);
    }
}
