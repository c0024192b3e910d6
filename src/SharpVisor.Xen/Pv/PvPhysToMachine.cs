namespace SharpVisor.Xen.Pv;

/// <summary>
/// A PV domain's two frame maps: the P2M (pseudo-physical frame → machine frame), which the
/// guest keeps and the builder hands it as <c>start_info.mfn_list</c>, and the M2P (machine →
/// pseudo-physical), the hypervisor's, updated by MMU_MACHPHYS_UPDATE. The P2M is a seeded
/// shuffle of the domain's machine frames, never the identity, so a guest that confuses the two
/// spaces fails at once instead of by luck.
/// </summary>
public sealed class PvPhysToMachine
{
    /// <summary>Xen's INVALID_M2P_ENTRY: an M2P slot of a frame that is not the domain's.</summary>
    public const ulong InvalidEntry = ulong.MaxValue;

    private readonly ulong[] _p2m;
    private readonly ulong[] _m2p;

    /// <param name="machineFrames">The domain's machine frames (distinct, each below <paramref name="machineFrameCount"/>).</param>
    /// <param name="machineFrameCount">Machine frames in all (the M2P's length).</param>
    /// <param name="seed">Picks the shuffle (fixed per domain so runs reproduce).</param>
    public PvPhysToMachine(IReadOnlyList<ulong> machineFrames, ulong machineFrameCount, int seed)
    {
        ArgumentNullException.ThrowIfNull(machineFrames);
        if (machineFrameCount > int.MaxValue || (ulong)machineFrames.Count > machineFrameCount)
        {
            throw new ArgumentOutOfRangeException(nameof(machineFrameCount));
        }

        _m2p = new ulong[machineFrameCount];
        Array.Fill(_m2p, InvalidEntry);
        _p2m = [.. machineFrames];
        Shuffle(_p2m, seed);
        for (int pfn = 0; pfn < _p2m.Length; pfn++)
        {
            ulong mfn = _p2m[pfn];
            if (mfn >= machineFrameCount || _m2p[mfn] != InvalidEntry)
            {
                throw new ArgumentException($"machine frame 0x{mfn:x} is out of range or given twice", nameof(machineFrames));
            }

            _m2p[mfn] = (ulong)pfn;
        }
    }

    /// <summary>The domain's pages (pseudo-physical frames 0 .. PageCount-1).</summary>
    public int PageCount => _p2m.Length;

    public ulong MachineFrameCount => (ulong)_m2p.Length;

    public ReadOnlySpan<ulong> P2m => _p2m;

    public ReadOnlySpan<ulong> M2p => _m2p;

    public ulong ToMachine(ulong pfn) => pfn < (ulong)_p2m.Length ? _p2m[pfn] : throw new ArgumentOutOfRangeException(nameof(pfn));

    /// <summary>The M2P entry of <paramref name="mfn"/>: a pfn, or <see cref="InvalidEntry"/> (also for an mfn out of range).</summary>
    public ulong ToPhysical(ulong mfn) => mfn < (ulong)_m2p.Length ? _m2p[mfn] : InvalidEntry;

    /// <summary>The balloon: pseudo-physical frame <paramref name="pfn"/> is now backed by <paramref name="mfn"/> (<see cref="InvalidEntry"/>: by nothing).</summary>
    public void SetMachine(ulong pfn, ulong mfn) => _p2m[pfn] = mfn;

    /// <summary>MMU_MACHPHYS_UPDATE: the guest says which pfn machine frame <paramref name="mfn"/> now backs (ownership is checked by the caller).</summary>
    public void SetPhysical(ulong mfn, ulong pfn) => _m2p[mfn] = pfn;

    /// <summary>Sattolo's shuffle (one cycle through all positions): no pfn keeps the machine frame it had in the list.</summary>
    private static void Shuffle(ulong[] frames, int seed)
    {
        var random = new Random(seed);
        for (int i = frames.Length - 1; i > 0; i--)
        {
            int j = random.Next(i);
            (frames[i], frames[j]) = (frames[j], frames[i]);
        }
    }
}
