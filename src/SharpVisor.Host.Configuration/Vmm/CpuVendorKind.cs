namespace SharpVisor.Host.Vmm;

/// <summary>
/// The CPU vendor a machine's guest sees (<c>--cpu-vendor</c>): the configuration's own name for
/// it (see <see cref="MmuKind"/>). The values are the snapshot file's.
/// </summary>
public enum CpuVendorKind
{
    Intel = 0,

    Amd = 1,
}
