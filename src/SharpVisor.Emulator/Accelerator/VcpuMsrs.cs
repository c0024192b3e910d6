using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// The MSRs Linux reads that neither the CPU core nor the platform devices own, with the values
/// a BIOS would have left (there is none): the microcode signature, IA32_MISC_ENABLE with fast
/// strings on, and the MTRRs enabled with write-back as the default type — the same values the
/// KVM accelerator sets (<c>KvmBootMsrs</c>). One instance per vCPU, used by its thread.
/// </summary>
public sealed class VcpuMsrs
{
    public const uint BiosSignId = 0x8B;
    public const uint MtrrCapabilities = 0xFE;
    public const uint MiscEnable = 0x1A0;
    public const uint MtrrPhysBase0 = 0x200;
    public const uint MtrrPhysMaskLast = 0x20F;
    public const uint MtrrFix64K = 0x250;
    public const uint MtrrFix16K80000 = 0x258;
    public const uint MtrrFix16KA0000 = 0x259;
    public const uint MtrrFix4KC0000 = 0x268;
    public const uint MtrrFix4KF8000 = 0x26F;
    public const uint MtrrDefType = 0x2FF;

    public const ulong MiscEnableFastStrings = 1UL << 0;

    /// <summary>8 variable ranges (VCNT), fixed ranges (FIX, bit 8), write-combining (WC, bit 10).</summary>
    public const ulong MtrrCapabilitiesValue = 8 | (1UL << 8) | (1UL << 10);

    public const ulong MtrrEnable = 1UL << 11;
    public const ulong MtrrFixedEnable = 1UL << 10;
    public const ulong MemoryTypeWriteBack = 6;

    private readonly Dictionary<uint, ulong> _values = new()
    {
        [MiscEnable] = MiscEnableFastStrings,
        [MtrrDefType] = MtrrEnable | MemoryTypeWriteBack,
    };

    public static bool Handles(uint msr) =>
        msr is BiosSignId or MtrrCapabilities or MiscEnable or MtrrDefType or MtrrFix64K or MtrrFix16K80000 or MtrrFix16KA0000
            or (>= MtrrPhysBase0 and <= MtrrPhysMaskLast) or (>= MtrrFix4KC0000 and <= MtrrFix4KF8000);

    public bool TryRead(uint msr, out ulong value)
    {
        if (!Handles(msr))
        {
            value = 0;
            return false;
        }

        value = msr == MtrrCapabilities ? MtrrCapabilitiesValue : _values.GetValueOrDefault(msr);
        return true;
    }

    /// <summary>False (#GP) for unknown MSRs, the read-only capability MSR and reserved MTRR bits.</summary>
    public bool TryWrite(uint msr, ulong value)
    {
        switch (msr)
        {
            case MtrrCapabilities:
                return false;
            case BiosSignId:
                // Linux writes 0 before CPUID to read the microcode revision back: there is none.
                return true;
            case MtrrDefType when (value & ~(0xFFUL | MtrrFixedEnable | MtrrEnable)) != 0:
                return false;
            default:
                if (!Handles(msr))
                {
                    return false;
                }

                _values[msr] = value;
                return true;
        }
    }

    public void Save(SnapshotWriter w)
    {
        w.Write(_values.Count);
        foreach ((uint msr, ulong value) in _values.OrderBy(p => p.Key))
        {
            w.Write(msr);
            w.Write(value);
        }
    }

    public void Load(SnapshotReader r)
    {
        int count = r.ReadInt32();
        if (count < 0 || count > 64)
        {
            throw r.Invalid($"{count} MTRR MSRs");
        }

        _values.Clear();
        for (int i = 0; i < count; i++)
        {
            uint msr = r.ReadUInt32();
            ulong value = r.ReadUInt64();
            if (!Handles(msr))
            {
                throw r.Invalid($"MSR 0x{msr:x} is not one the vCPU keeps");
            }

            _values[msr] = value;
        }
    }
}
