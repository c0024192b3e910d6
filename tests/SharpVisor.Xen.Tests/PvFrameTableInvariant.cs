using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// A debug checker of direct paging's type and count invariant (Xen's, xen/arch/x86/mm.c), from
/// the frame table and the tables' contents alone:
/// <list type="bullet">
/// <item>a frame has at most one type with a non-zero type count, and its counts are exactly the
/// references that hold them: pins, vCPU base pointers, other holders (GDT frames, the pages the
/// hypervisor writes), and the present entries of validated tables;</item>
/// <item>no writable mapping of a frame whose type is a page table in use;</item>
/// <item>every present entry of a validated table names a frame the domain owns, passes its level's
/// disallow mask, is user-accessible (64-bit PV), and holds one type reference of the next level
/// down (at L1: a Writable one when writable); the hypervisor's frames hold no reference at all;</item>
/// <item>a frame that is not the domain's (the hypervisor's, or given back by the balloon) has an
/// invalid M2P entry and no reference;</item>
/// <item>a validated L4 holds Xen's own slots (the M2P entry in 256, nothing in 257-271);</item>
/// <item>grant maps: each holds an L1 type reference (and a general one) on the table it wrote into,
/// its entry there is present, _PAGE_GNTTAB and names its stand-in frame; a stand-in is not the
/// domain's, holds no reference and is named by exactly one map; no other entry of a validated L1
/// carries _PAGE_GNTTAB.</item>
/// </list>
/// </summary>
internal static class PvFrameTableInvariant
{
    /// <summary>Null when the invariant holds, else the first violation found.</summary>
    /// <param name="roots">Every vCPU's kernel and user base pointer (0 = none).</param>
    /// <param name="held">Type references held outside page tables: (frame, type) per reference.</param>
    public static string? Check(PvPageTables tables, GuestMemory memory, IEnumerable<ulong> roots, IEnumerable<(ulong Frame, PvPageType Type)> held)
    {
        ulong frames = tables.PhysToMachine.MachineFrameCount;
        var expectedTypes = new long[frames];
        var expectedReferences = new long[frames];
        var writableMappings = new long[frames];
        var neededType = new PvPageType[frames];

        string? Need(ulong mfn, PvPageType type, string holder)
        {
            if (neededType[mfn] != PvPageType.None && neededType[mfn] != type)
            {
                return $"frame 0x{mfn:x} is needed as {neededType[mfn]} and as {type} (by {holder})";
            }

            neededType[mfn] = type;
            expectedTypes[mfn]++;
            return null;
        }

        foreach (ulong root in roots.Where(r => r != 0))
        {
            if (Need(root, PvPageType.L4, "a base pointer") is { } violation)
            {
                return violation;
            }

            expectedReferences[root]++;
        }

        var grantEntries = new Dictionary<(ulong Table, int Slot), ulong>();
        var standIns = new HashSet<ulong>();
        foreach (PvGrantMapping map in tables.GrantMappings)
        {
            if (!standIns.Add(map.Frame) || !grantEntries.TryAdd((map.Table, map.Slot), map.Frame))
            {
                return $"grant map of stand-in 0x{map.Frame:x} at L1 0x{map.Table:x} slot {map.Slot} shares its frame or entry with another";
            }

            if (Need(map.Table, PvPageType.L1, $"the grant map of stand-in 0x{map.Frame:x}") is { } violation)
            {
                return violation;
            }

            expectedReferences[map.Table]++;
            ulong entry = memory.Read<ulong>((map.Table << 12) + ((ulong)map.Slot * 8));
            const ulong marks = PvPte.Present | PvPte.GrantMapped;
            if ((entry & marks) != marks || PvPte.Frame(entry) != map.Frame || ((entry & PvPte.Writable) != 0) == map.ReadOnly)
            {
                return $"grant map of stand-in 0x{map.Frame:x}: L1 0x{map.Table:x} slot {map.Slot} holds 0x{entry:x}";
            }
        }

        for (ulong mfn = 0; mfn < frames; mfn++)
        {
            PvPageFrame frame = tables.Frame(mfn);
            if (frame.GrantMapped != standIns.Contains(mfn) || (frame.GrantMapped && (frame.Owned || frame.ReferenceCount != 0 || frame.TypeCount != 0)))
            {
                return $"frame 0x{mfn:x}: grant-mapped {frame.GrantMapped} (owned {frame.Owned}, {frame.TypeCount}/{frame.ReferenceCount}) but named by {(standIns.Contains(mfn) ? "a" : "no")} grant map";
            }
        }

        foreach ((ulong frame, PvPageType type) in held)
        {
            if (Need(frame, type, "a holder outside page tables") is { } violation)
            {
                return violation;
            }

            expectedReferences[frame]++;
        }

        for (ulong mfn = 0; mfn < frames; mfn++)
        {
            PvPageFrame frame = tables.Frame(mfn);
            if (frame.TypeCount < 0 || frame.ReferenceCount < 0 || frame.ReferenceCount < frame.TypeCount)
            {
                return $"frame 0x{mfn:x}: type count {frame.TypeCount}, reference count {frame.ReferenceCount}";
            }

            if (!frame.Owned && (frame.TypeCount != 0 || frame.ReferenceCount != 0 || frame.Pinned))
            {
                return $"frame 0x{mfn:x} is not the domain's yet holds references ({frame.TypeCount}/{frame.ReferenceCount})";
            }

            if (!frame.Owned && tables.PhysToMachine.ToPhysical(mfn) != PvPhysToMachine.InvalidEntry)
            {
                return $"frame 0x{mfn:x} is not the domain's yet its M2P entry names pfn 0x{tables.PhysToMachine.ToPhysical(mfn):x}";
            }

            int level = frame.Type is >= PvPageType.L1 and <= PvPageType.L4 ? (int)frame.Type : 0;
            if (frame.Validated && (level == 0 || frame.TypeCount == 0))
            {
                return $"frame 0x{mfn:x} is validated as {frame.Type} with type count {frame.TypeCount}";
            }

            if (frame.Pinned)
            {
                if (level == 0 || Need(mfn, frame.Type, "its pin") is { } violation)
                {
                    return $"frame 0x{mfn:x} is pinned as {frame.Type}";
                }

                expectedReferences[mfn]++;
            }

            if (level == 0 || frame.TypeCount == 0)
            {
                continue;
            }

            if (!frame.Validated)
            {
                return $"frame 0x{mfn:x} is an {frame.Type} in use but not validated";
            }

            for (int slot = 0; slot < PvPageTables.EntriesPerTable; slot++)
            {
                ulong entry = memory.Read<ulong>((mfn << 12) + ((ulong)slot * 8));
                if (level == 4 && PvPte.IsHypervisorL4Slot(slot))
                {
                    ulong xen = slot == PvPte.FirstHypervisorSlot ? tables.M2pL3Entry : 0;
                    if (entry != xen)
                    {
                        return $"L4 0x{mfn:x} slot {slot} holds 0x{entry:x}, not Xen's 0x{xen:x}";
                    }

                    continue;
                }

                if ((entry & PvPte.Present) == 0)
                {
                    continue;
                }

                ulong target = PvPte.Frame(entry);
                string where = $"L{level} 0x{mfn:x} slot {slot} (0x{entry:x})";
                if (level == 1 && (entry & PvPte.GrantMapped) != 0)
                {
                    // The hypervisor's entry for a grant map: it holds the table, not its stand-in.
                    if (!grantEntries.TryGetValue((mfn, slot), out ulong standIn) || standIn != target || (entry & PvPte.User) == 0)
                    {
                        return $"{where} is a granted entry no grant map wrote";
                    }

                    continue;
                }

                if (target >= frames || !tables.Owns(target))
                {
                    return $"{where} names frame 0x{target:x}, not the domain's";
                }

                if ((entry & PvPte.DisallowMask(level)) != 0 || (entry & PvPte.User) == 0)
                {
                    return $"{where} has flags a validated table may not hold";
                }

                expectedReferences[target]++;
                if (level > 1)
                {
                    if (Need(target, (PvPageType)(level - 1), where) is { } violation)
                    {
                        return violation;
                    }
                }
                else if ((entry & PvPte.Writable) != 0)
                {
                    writableMappings[target]++;
                    if (Need(target, PvPageType.Writable, where) is { } violation)
                    {
                        return violation;
                    }
                }
            }
        }

        for (ulong mfn = 0; mfn < frames; mfn++)
        {
            PvPageFrame frame = tables.Frame(mfn);
            if (frame.TypeCount > 0 && frame.Type is >= PvPageType.L1 and <= PvPageType.L4 && writableMappings[mfn] > 0)
            {
                return $"frame 0x{mfn:x} is an {frame.Type} in use with {writableMappings[mfn]} writable mappings";
            }

            if (frame.TypeCount != expectedTypes[mfn] || (expectedTypes[mfn] > 0 && frame.Type != neededType[mfn]))
            {
                return $"frame 0x{mfn:x}: type {frame.Type} × {frame.TypeCount}, but its holders need {neededType[mfn]} × {expectedTypes[mfn]}";
            }

            if (frame.ReferenceCount != expectedReferences[mfn])
            {
                return $"frame 0x{mfn:x}: reference count {frame.ReferenceCount}, but {expectedReferences[mfn]} references hold it";
            }
        }

        return null;
    }
}
