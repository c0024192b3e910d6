namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>splitmix64: the generator shared with tests/native/difftest.c for the data window's contents.</summary>
internal static class SplitMix
{
    public static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A well-mixed per-case seed from the run seed, the family and the case index.</summary>
    public static ulong Derive(ulong seed, string family, int index)
    {
        ulong state = seed ^ (ulong)(uint)index * 0x9E3779B97F4A7C15UL;
        foreach (char c in family)
        {
            state = (state ^ c) * 0x100000001B3UL;
        }

        Next(ref state);
        return Next(ref state);
    }
}
