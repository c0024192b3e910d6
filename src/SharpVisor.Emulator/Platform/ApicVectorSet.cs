using SharpVisor.Machine.Snapshots;
using System.Numerics;

namespace SharpVisor.Emulator.Platform;

/// <summary>A 256-bit vector register (IRR, ISR, TMR). Not thread-safe: the owning APIC locks.</summary>
internal sealed class ApicVectorSet
{
    private readonly ulong[] _words = new ulong[4];

    public bool IsEmpty => (_words[0] | _words[1] | _words[2] | _words[3]) == 0;

    public bool Test(int vector) => (_words[vector >> 6] & (1UL << (vector & 63))) != 0;

    public void Set(int vector) => _words[vector >> 6] |= 1UL << (vector & 63);

    public void Clear(int vector) => _words[vector >> 6] &= ~(1UL << (vector & 63));

    public void Assign(int vector, bool value)
    {
        if (value)
        {
            Set(vector);
        }
        else
        {
            Clear(vector);
        }
    }

    public void ClearAll() => Array.Clear(_words);

    /// <summary>The highest set vector, or -1.</summary>
    public int Highest()
    {
        for (int i = 3; i >= 0; i--)
        {
            if (_words[i] != 0)
            {
                return (i << 6) + 63 - BitOperations.LeadingZeroCount(_words[i]);
            }
        }

        return -1;
    }

    /// <summary>Bits 32*index .. 32*index+31, as the eight 32-bit APIC registers expose them.</summary>
    public uint ReadRegister(int index) => (uint)(_words[index >> 1] >> (32 * (index & 1)));

    public void Save(SnapshotWriter w) => w.Write(_words);

    public void Load(SnapshotReader r) => r.ReadUInt64Array(_words.Length).CopyTo(_words, 0);
}
