using SharpVisor.Host.Domains;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests;

internal static class DomainStopInfoAssert
{
    public static void PoweredOff(DomainStopInfo info)
    {
        Assert.Equal(MachineStopReason.PowerOff, info.Reason);
        Assert.Equal(0, info.ExitStatus);
    }
}
