using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// The AMD model-specific registers Linux touches on an AuthenticAMD processor, answered for a vCPU
/// of the AMD profile as KVM answers them: HWCR (C001_0015H) reads back what was written (only
/// McStatusWrEn, bit 18, is writable; bits 3, 6 and 8 are ignored), NB_CFG (C001_001FH) and
/// MMIO_CONF_BASE (C001_0058H) read as zero and ignore writes. An Intel vCPU has none of them.
/// </summary>
public sealed class AmdMsrs
{
    public const uint Hwcr = 0xC001_0015;
    public const uint NorthBridgeConfig = 0xC001_001F;
    public const uint MmioConfigBase = 0xC001_0058;

    private const ulong HwcrIgnored = (1UL << 3) | (1UL << 6) | (1UL << 8);
    private const ulong HwcrWritable = 1UL << 18;

    private ulong _hwcr;

    public static bool Handles(uint msr) => msr is Hwcr or NorthBridgeConfig or MmioConfigBase;

    public bool TryRead(uint msr, out ulong value)
    {
        value = msr == Hwcr ? _hwcr : 0;
        return Handles(msr);
    }

    /// <summary>False (#GP) for an unknown MSR or a HWCR bit the vCPU does not implement.</summary>
    public bool TryWrite(uint msr, ulong value)
    {
        switch (msr)
        {
            case Hwcr:
                value &= ~HwcrIgnored;
                if ((value & ~HwcrWritable) != 0)
                {
                    return false;
                }

                _hwcr = value;
                return true;
            case NorthBridgeConfig:
            case MmioConfigBase:
                return true;
            default:
                return false;
        }
    }

    public void Save(SnapshotWriter w) => w.Write(_hwcr);

    public void Load(SnapshotReader r) => _hwcr = r.ReadUInt64() & HwcrWritable;
}
