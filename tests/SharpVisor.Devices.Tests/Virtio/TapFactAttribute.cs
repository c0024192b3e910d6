using SharpVisor.TestSupport;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>A test that creates a TAP interface: needs root and /dev/net/tun; skipped loudly otherwise.</summary>
public sealed class TapFactAttribute : FactAttribute
{
    public TapFactAttribute()
    {
        if (!HostCapabilities.IsRoot)
        {
            Skip = "SKIPPED — NEEDS root to create TAP interfaces";
        }
        else if (!File.Exists("/dev/net/tun"))
        {
            Skip = "SKIPPED — NEEDS /dev/net/tun (the tun module) to create TAP interfaces";
        }
    }
}
