namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>A small seeded random source (splitmix64) so every case is reproducible from its seed.</summary>
internal sealed class CaseRandom
{
    private ulong _state;

    public CaseRandom(ulong seed)
    {
        _state = seed;
    }

    public ulong Next() => SplitMix.Next(ref _state);

    /// <summary>Uniform in [0, n).</summary>
    public int Below(int n) => (int)(Next() % (ulong)n);

    public bool Chance(double p) => (Next() >> 11) * (1.0 / (1UL << 53)) < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Below(items.Count)];

    private static readonly ulong[] s_edges =
    [
        0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFF_FFFF, 0x8000_0000,
        0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
        0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FF80, 0xFFFF_FFFF_FFFF_8000, 0xFFFF_FFFF_8000_0000, 0x5555_5555_5555_5555,
        0xAAAA_AAAA_AAAA_AAAA, 0x0F0F_0F0F_0F0F_0F0F, 0x1234_5678_9ABC_DEF0,
    ];

    /// <summary>An interesting integer: edge values, small numbers, single bits, or random bits.</summary>
    public ulong Value()
    {
        switch (Below(6))
        {
            case 0: return s_edges[Below(s_edges.Length)];
            case 1: return (ulong)Below(64);
            case 2: return 1UL << Below(64);
            case 3: return (ulong)(long)(sbyte)Next();
            case 4: return Next() & (0xFFUL << (8 * Below(8)));
            default: return Next();
        }
    }
}
