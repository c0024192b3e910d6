namespace SharpVisor.Xen;

/// <summary>
/// Offsets in the x86-64 shared_info page and vcpu_info (xen/include/public/xen.h,
/// arch-x86/xen.h): 32 legacy vcpu_info slots, the 2-level event bitmaps, the wall clock.
/// </summary>
internal static class SharedInfoLayout
{
    public const int VcpuInfoSize = 64;
    public const int LegacyVcpus = 32;
    public const int EvtchnPending = LegacyVcpus * VcpuInfoSize;   // 2048: 64 words
    public const int EvtchnMask = EvtchnPending + (64 * 8);         // 2560
    public const int WcVersion = EvtchnMask + (64 * 8);             // 3072
    public const int WcSec = WcVersion + 4;
    public const int WcNsec = WcSec + 4;
    public const int WcSecHi = WcNsec + 4;

    // vcpu_info
    public const int UpcallPending = 0;
    public const int UpcallMask = 1;
    public const int PendingSelector = 8;
    public const int Time = 32;   // vcpu_time_info: version, pad, tsc_timestamp, system_time, mul, shift, flags

    /// <summary>2-level event channels on x86-64: 64 words of 64 bits.</summary>
    public const int MaxPorts = 64 * 64;
}
