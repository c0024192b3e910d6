namespace SharpVisor.Xen;

/// <summary>
/// The pvclock scale (vcpu_time_info.tsc_to_system_mul and tsc_shift) that turns TSC ticks into
/// nanoseconds: ns = ((tsc shifted by shift) * mul) >> 32, shift chosen so mul fits 32 bits.
/// </summary>
public static class PvClock
{
    public const byte TscStableBit = 1;

    public static (uint Multiplier, sbyte Shift) Scale(long tscFrequencyHz)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tscFrequencyHz);
        ulong scaled = 1_000_000_000;
        ulong ticks = (ulong)tscFrequencyHz;
        int shift = 0;
        while (ticks > scaled * 2 || (ticks & 0xFFFF_FFFF_0000_0000) != 0)
        {
            ticks >>= 1;
            shift--;
        }

        uint ticks32 = (uint)ticks;
        while (ticks32 <= scaled || (scaled & 0xFFFF_FFFF_0000_0000) != 0)
        {
            if ((scaled & 0xFFFF_FFFF_0000_0000) != 0 || (ticks32 & 0x8000_0000) != 0)
            {
                scaled >>= 1;
            }
            else
            {
                ticks32 <<= 1;
            }

            shift++;
        }

        return ((uint)((scaled << 32) / ticks32), (sbyte)shift);
    }

    /// <summary>What a guest computes from the scale: the nanoseconds in <paramref name="delta"/> ticks.</summary>
    public static ulong Apply(ulong delta, uint multiplier, sbyte shift)
    {
        delta = shift < 0 ? delta >> -shift : delta << shift;
        return (ulong)(((UInt128)delta * multiplier) >> 32);
    }
}
