using SharpVisor.TestSupport;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>A test that mounts an ext4 filesystem on a loop device: needs root, loop devices and e2fsprogs; skipped loudly otherwise.</summary>
public sealed class LoopDeviceFactAttribute : FactAttribute
{
    private static readonly string[] s_tools = ["losetup", "mount", "umount", "mkfs.ext4", "filefrag"];

    public LoopDeviceFactAttribute()
    {
        if (!HostCapabilities.IsRoot)
        {
            Skip = "SKIPPED — NEEDS root/loop devices: not running as root";
        }
        else if (!File.Exists("/dev/loop-control"))
        {
            Skip = "SKIPPED — NEEDS root/loop devices: /dev/loop-control does not exist (the loop module)";
        }
        else if (s_tools.FirstOrDefault(t => !OnPath(t)) is string missing)
        {
            Skip = $"SKIPPED — NEEDS root/loop devices: {missing} not found on PATH (apt-get install e2fsprogs mount)";
        }
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(d => File.Exists(Path.Combine(d, tool)));
}
