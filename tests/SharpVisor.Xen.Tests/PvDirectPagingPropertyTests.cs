using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;
using Xunit.Abstractions;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The type/count invariant as a property (<see cref="PvFrameTableInvariant"/>): a seeded random
/// sequence of mmu_update, mmuext_op, update_va_mapping, writable-page-table stores, descriptor
/// type references, grant-copy writes, balloon steps (decrease_reservation, populate_physmap) and
/// grant maps into the tables (map by linear address or entry address, unmap, release at death) over a small machine, the invariant checked after every
/// step. 10,000 steps by default (./test.sh); SHARPVISOR_FUZZ_FULL=1 runs 1,000,000
/// (<c>scripts/fuzz.sh pv</c>); SHARPVISOR_FUZZ_SEED=N picks another seed.
/// </summary>
public sealed class PvDirectPagingPropertyTests : IDisposable
{
    // The domain owns frames 0..47, the hypervisor 48..63 (as in PvPageTablesTests).
    private const int MachineFrames = 64;
    private const int DomainFrames = 48;
    private const ulong HypervisorFrame = 50;
    private const ulong M2pEntry = (HypervisorFrame << 12) | PvPte.Present | PvPte.User;

    private readonly ITestOutputHelper _output;
    private readonly GuestMemory _memory = GuestMemory.CreateRam(2 << 20);
    private readonly PvPageTables _tables;
    private readonly PvVcpuPaging[] _vcpus = [new(0), new(1)];
    private readonly List<ulong> _descriptorFrames = [];
    private readonly List<PvGrantMapping> _grantMaps = [];

    public PvDirectPagingPropertyTests(ITestOutputHelper output)
    {
        _output = output;
        var p2m = new PvPhysToMachine([.. Enumerable.Range(0, DomainFrames).Select(i => (ulong)i)], MachineFrames, seed: 7);
        _tables = new PvPageTables(_memory, p2m, new ExitCounters(), M2pEntry);
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void RandomPageTableTraffic_KeepsTheTypeAndCountInvariantAfterEveryStep()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int steps = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 12;
        var random = new Random(seed);
        var outcomes = new Dictionary<int, int>();
        for (int step = 0; step < steps; step++)
        {
            (string operation, int rc) = RandomStep(random);
            Assert.True(rc is 0 or -XenErrno.EINVAL or -XenErrno.EBUSY or -XenErrno.EPERM or -XenErrno.EACCES or -XenErrno.ENXIO or -XenErrno.ENOMEM,
                $"seed {seed} step {step}: {operation} = {rc}");
            outcomes[rc] = outcomes.GetValueOrDefault(rc) + 1;
            string? violation = PvFrameTableInvariant.Check(_tables, _memory, _vcpus.SelectMany(v => new[] { v.KernelBase, v.UserBase }), Held());
            Assert.True(violation is null, $"seed {seed} step {step}: after {operation}: {violation}");
        }

        string summary = string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Key}: {o.Value}"));
        _output.WriteLine($"PV direct paging, seed {seed}: {steps} steps, results {summary}; validated L1-L4 {string.Join('/', Enumerable.Range(1, 4).Select(l => _tables.Counters[$"pv-validated-l{l}"]))}, refused {_tables.Counters["pv-refused"]}, writable-page-table stores applied {_tables.Counters["pv-ptwr-emulated"]}, grant maps {_tables.Counters["pv-grant-maps"]}, unmaps {_tables.Counters["pv-grant-unmaps"]}, updates refused on a granted entry {_tables.Counters["pv-refused-granted-pte"]}");

        // The traffic must exercise both sides: tables of every level validated, and many refusals.
        Assert.InRange(outcomes.GetValueOrDefault(0), steps / 10, steps - (steps / 10));
        for (int level = 1; level <= 4; level++)
        {
            Assert.True(_tables.Counters[$"pv-validated-l{level}"] > 0, $"no L{level} table was ever validated");
        }

        Assert.True(_tables.Counters["pv-balloon-released"] > 0 && _tables.Counters["pv-balloon-populated"] > 0, "the balloon never gave back or populated a frame");
        Assert.True(_tables.Counters["pv-grant-maps"] > 0 && _tables.Counters["pv-grant-unmaps"] > 0, "no grant was ever mapped and unmapped");
        Assert.True(_tables.Counters["pv-refused-granted-pte"] > 0, "no update ever met a granted entry");
    }

    private IEnumerable<(ulong Frame, PvPageType Type)> Held() => _descriptorFrames.Select(f => (f, PvPageType.SegmentDescriptor));

    private (string Operation, int Rc) RandomStep(Random random)
    {
        ulong frame = RandomFrame(random);
        PvVcpuPaging vcpu = _vcpus[random.Next(_vcpus.Length)];
        switch (random.Next(24))
        {
            case 0:
            case 1:
            {
                int level = random.Next(1, 5);
                return ($"pin L{level} 0x{frame:x}", _tables.MmuextOp(vcpu, (PvMmuextCommand)(level - 1), frame, 0));
            }

            case 2:
                return ($"unpin 0x{frame:x}", _tables.MmuextOp(vcpu, PvMmuextCommand.UnpinTable, frame, 0));
            case 3:
                return ($"new_baseptr vCPU {vcpu.VcpuId} 0x{frame:x}", _tables.MmuextOp(vcpu, PvMmuextCommand.NewBaseptr, frame, 0));
            case 4:
            {
                ulong user = random.Next(3) == 0 ? 0 : frame;
                return ($"new_user_baseptr vCPU {vcpu.VcpuId} 0x{user:x}", _tables.MmuextOp(vcpu, PvMmuextCommand.NewUserBaseptr, user, 0));
            }

            case 5:
            {
                ulong va = RandomAddress(random);
                ulong value = RandomEntry(random);
                ulong flags = (ulong)random.Next(8);
                return ($"update_va_mapping vCPU {vcpu.VcpuId} 0x{va:x} = 0x{value:x} flags {flags}", _tables.UpdateVaMapping(vcpu, va, value, flags));
            }

            case 6:
            {
                // A writable-page-table store by the guest kernel: 8 or 4 bytes into whatever the address maps.
                ulong va = RandomAddress(random) + ((ulong)random.Next(512) * 8);
                int size = random.Next(2) == 0 ? 8 : 4;
                ulong stored = RandomEntry(random);
                bool handled = _tables.TryWriteL1Entry(vcpu, va, size, _ => size == 8 ? stored : stored & 0xFFFF_FFFF, out _, out int rc);
                return ($"ptwr vCPU {vcpu.VcpuId} 0x{va:x} ({size} bytes) = 0x{stored:x}: {(handled ? "handled" : "the guest's fault")}", handled ? rc : 0);
            }

            case 7:
            {
                if (_descriptorFrames.Count > 0 && random.Next(2) == 0)
                {
                    int index = random.Next(_descriptorFrames.Count);
                    ulong held = _descriptorFrames[index];
                    _descriptorFrames.RemoveAt(index);
                    _tables.PutTypeReference(held);
                    return ($"put descriptor reference 0x{held:x}", 0);
                }

                int rc = _tables.GetTypeReference(frame, PvPageType.SegmentDescriptor);
                if (rc == 0)
                {
                    _descriptorFrames.Add(frame);
                }

                return ($"descriptor reference 0x{frame:x}", rc);
            }

            case 8:
                return ($"clear 0x{frame:x}", _tables.MmuextOp(vcpu, PvMmuextCommand.ClearPage, frame, 0));
            case 9:
            {
                ulong source = RandomFrame(random);
                return ($"copy 0x{source:x} to 0x{frame:x}", _tables.MmuextOp(vcpu, PvMmuextCommand.CopyPage, frame, source));
            }

            case 10:
            {
                // The balloon: a frame given back (only an unused one of the domain's goes), or a pfn populated from the pool.
                if (random.Next(2) == 0)
                {
                    return ($"decrease_reservation 0x{frame:x}", _tables.TryReleaseFrame(frame, () => _memory.Fill(frame << 12, 4096, 0)));
                }

                ulong pfn = (ulong)random.Next(DomainFrames + 2);
                int rc = _tables.TryTakeFrame(pfn, mfn => _memory.Fill(mfn << 12, 4096, 0), out ulong taken);
                return ($"populate_physmap pfn 0x{pfn:x}{(rc == 0 ? $" = 0x{taken:x}" : string.Empty)}", rc);
            }

            case 11:
            {
                ulong pfn = (ulong)random.Next(DomainFrames);
                return ($"machphys 0x{frame:x} = 0x{pfn:x}", _tables.MmuUpdate((frame << 12) | PvPageTables.MmuMachphysUpdate, pfn));
            }

            case 12:
            {
                // A grant copy into the domain's own frame: allowed only where the writable type can be taken.
                int slot = random.Next(4);
                ulong value = RandomEntry(random);
                bool written = _tables.TryWriteAsWritable(frame, () => _memory.Write((frame << 12) + ((ulong)slot * 8), value));
                return ($"grant copy into 0x{frame:x}[{slot}] = 0x{value:x}: {(written ? "written" : "refused")}", written ? 0 : -XenErrno.EBUSY);
            }

            case 13:
            case 14:
            {
                // GNTTABOP_map_grant_ref: by linear address, or by the entry's machine address (sometimes misaligned).
                // Half by entry address, mostly into an L1 in use (where a map can land), sometimes anywhere.
                bool containsPte = random.Next(2) == 0;
                ulong[] tablesInUse = [.. Enumerable.Range(0, 12).Select(f => (ulong)f).Where(f => _tables.Frame(f) is { Type: PvPageType.L1, TypeCount: > 0 })];
                ulong table = tablesInUse.Length > 0 && random.Next(4) != 0 ? tablesInUse[random.Next(tablesInUse.Length)] : frame;
                ulong host = containsPte ? (table << 12) + ((ulong)random.Next(4) * 8) + (random.Next(16) == 0 ? 4UL : 0) : RandomAddress(random);
                bool readOnly = random.Next(2) == 0;
                bool hostRefuses = random.Next(20) == 0;
                short status = _tables.TryMapGrant(vcpu, host, containsPte, readOnly, 0, standIn =>
                {
                    _memory.Fill(standIn << 12, 4096, 0xAB);          // the granted page behind the stand-in
                    return !hostRefuses;
                }, out PvGrantMapping map);
                Assert.True(status is GrantStatus.Okay or GrantStatus.GeneralError or GrantStatus.NoDeviceSpace, $"grant map status {status}");
                if (status == GrantStatus.Okay)
                {
                    _grantMaps.Add(map);
                }

                return ($"grant map vCPU {vcpu.VcpuId} {(containsPte ? "pte" : "va")} 0x{host:x}{(readOnly ? " ro" : string.Empty)} = {status}{(status == 0 ? $" stand-in 0x{map.Frame:x}" : string.Empty)}",
                    status == GrantStatus.Okay ? 0 : status == GrantStatus.NoDeviceSpace ? -XenErrno.ENOMEM : -XenErrno.EINVAL);
            }

            case 15:
            {
                if (_grantMaps.Count == 0)
                {
                    return ("no grant map to unmap", 0);
                }

                int index = random.Next(_grantMaps.Count);
                PvGrantMapping map = _grantMaps[index];
                if (random.Next(8) == 0)
                {
                    _tables.ReleaseGrantMapping(map, standIn =>
                    {
                        _memory.Fill(standIn << 12, 4096, 0);
                        return random.Next(10) != 0;                   // sometimes the host cannot take the page away: the frame is withheld
                    });
                    _grantMaps.RemoveAt(index);
                    return ($"release grant map 0x{map.Frame:x} (domain death)", 0);
                }

                ulong host = random.Next(4) == 0 ? RandomAddress(random) : map.LinearAddress != 0 ? map.LinearAddress : (map.Table << 12) + ((ulong)map.Slot * 8);
                bool detached = random.Next(20) != 0;
                short status = _tables.TryUnmapGrant(vcpu, host, map, _ => detached);
                Assert.True(status is GrantStatus.Okay or GrantStatus.GeneralError, $"grant unmap status {status}");
                if (status == GrantStatus.Okay)
                {
                    _grantMaps.RemoveAt(index);
                }

                return ($"grant unmap vCPU {vcpu.VcpuId} 0x{host:x} of stand-in 0x{map.Frame:x} = {status}", status == GrantStatus.Okay ? 0 : -XenErrno.EINVAL);
            }

            default:
            {
                int slot = random.Next(16) switch
                {
                    0 => 256 + random.Next(16),
                    1 => random.Next(512),
                    _ => random.Next(4),
                };
                ulong value = RandomEntry(random);
                int command = random.Next(4) == 0 ? PvPageTables.MmuPtUpdatePreserveAd : PvPageTables.MmuNormalPtUpdate;
                return ($"mmu_update 0x{frame:x}[{slot}] = 0x{value:x} ({command})", _tables.MmuUpdate((frame << 12) + ((ulong)slot * 8) + (ulong)command, value));
            }
        }
    }

    /// <summary>Mostly a few frames (so hierarchies form), sometimes any of the domain's, the hypervisor's, or one past memory.</summary>
    private static ulong RandomFrame(Random random) => random.Next(20) switch
    {
        0 => HypervisorFrame + (ulong)random.Next(MachineFrames - (int)HypervisorFrame),
        1 => (ulong)random.Next(DomainFrames),
        _ => (ulong)random.Next(12),
    };

    /// <summary>An address under the first entries of each level (where the random tables put their entries).</summary>
    private static ulong RandomAddress(Random random) =>
        ((ulong)random.Next(4) << 39) | ((ulong)random.Next(4) << 30) | ((ulong)random.Next(4) << 21) | ((ulong)random.Next(4) << 12);

    private static ulong RandomEntry(Random random)
    {
        ulong flags = random.Next(4) switch
        {
            0 => 0,
            1 => PvPte.Present,
            _ => PvPte.Present | PvPte.Writable,
        };
        if (random.Next(4) == 0)
        {
            flags |= PvPte.User;
        }

        if (random.Next(8) == 0)
        {
            flags |= PvPte.Accessed | PvPte.Dirty | PvPte.NoExecute | (1UL << 9);
        }

        if (random.Next(16) == 0)
        {
            // What a validated table may not hold: cache attributes, a superpage, global above L1.
            flags |= random.Next(3) switch { 0 => PvPte.CacheDisable, 1 => PvPte.LargeOrPat, _ => PvPte.Global };
        }

        ulong frame = random.Next(40) == 0 ? (1UL << 30) + (ulong)random.Next(100) : RandomFrame(random);
        return (frame << 12) | flags;
    }
}
