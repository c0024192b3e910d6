using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// Issue 11: the default guest as a Xen domain on the emulator. One boot carries every
/// assertion (a Linux boot costs tens of seconds of emulation).
/// </summary>
public sealed class XenGuestTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sv-xen-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// --xen pvh: the kernel enters at its PVH entry, finds Xen (dmesg, /sys/hypervisor/type), and
    /// everything from the first kernel line to the hook's output and the power-off comes through
    /// Xen's PV console, hvc0 — the command line names no other console.
    /// </summary>
    [DefaultGuestTheory]
    [InlineData(1)]
    [InlineData(2)]
    public void ThePvhGuestBootsOnXenWithItsConsoleOnHvc0(int cpus)
    {
        const string Hook =
            "echo \"XEN-TYPE $(cat /sys/hypervisor/type)\"\n" +
            "dmesg | grep -m1 'Booting kernel on' | sed 's/^.*Booting/DMESG Booting/'\n" +
            "dmesg | grep -m1 'Xen HVM callback vector' | sed 's/^.*xen:events:/DMESG events:/'\n" +
            "grep -o '^hvc0' /proc/consoles | sed 's/^/CONSOLE /'\n" +
            // XenStore through the kernel's own xenbus device: XS_READ "name", XS_DIRECTORY "control".
            "exec 3<>/dev/xen/xenbus\n" +
            "printf '\\002\\000\\000\\000\\007\\000\\000\\000\\000\\000\\000\\000\\005\\000\\000\\000name\\000' >&3\n" +
            "echo \"XS-NAME $(dd bs=256 count=1 <&3 2>/dev/null | tail -c 16)\"\n" +
            "printf '\\001\\000\\000\\000\\010\\000\\000\\000\\000\\000\\000\\000\\010\\000\\000\\000control\\000' >&3\n" +
            "echo \"XS-CONTROL $(dd bs=512 count=1 <&3 2>/dev/null | tail -c +17 | tr '\\000' ' ')\"\n";
        using GuestRun run = GuestRun.Start(_directory, Hook, arguments: ["--xen", "pvh", "--memory", "256M", "--cpus", cpus.ToString(System.Globalization.CultureInfo.InvariantCulture)], commandLine: "console=hvc0 reboot=k panic=-1");

        Assert.Equal("XEN-TYPE xen", run.WaitForLine("XEN-TYPE"));
        Assert.Equal("DMESG Booting kernel on Xen PVH", run.WaitForLine("DMESG Booting"));
        Assert.Equal("DMESG events: Xen HVM callback vector for event delivery is enabled", run.WaitForLine("DMESG events"));
        Assert.Equal("CONSOLE hvc0", run.WaitForLine("CONSOLE"));

        // XenStore: the toolstack's seed is readable, and the kernel's own xenbus wrote its
        // shutdown features under control/ (so watches and writes work too).
        Assert.Equal("XS-NAME sharpvisor-guest", run.WaitForLine("XS-NAME"));
        string control = run.WaitForLine("XS-CONTROL");
        Assert.Contains("feature-poweroff", control, StringComparison.Ordinal);
        Assert.Contains("feature-reboot", control, StringComparison.Ordinal);
        Assert.Equal(0, run.WaitForExit());

        string[] lines = run.Lines;
        Assert.Contains(lines, l => l.Contains("Linux version 6.", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"smpboot: Total of {cpus} processors activated", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("xen:grant_table: Grant tables using version 1 layout", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("add_to_physmap failed", StringComparison.Ordinal));
        int initStart = Array.IndexOf(lines, "INIT-START");
        int ready = Array.IndexOf(lines, "GUEST-READY");
        Assert.True(initStart >= 0 && ready > initStart, string.Join('\n', lines.TakeLast(30)));
        Assert.DoesNotContain(lines, l => l.Contains("Call Trace:", StringComparison.Ordinal) || l.Contains("Kernel panic", StringComparison.Ordinal));
        Assert.Contains("--xen pvh: the Xen layer runs on the emulator unless --accel kvm asks for KVM's Xen support (this KVM ", run.StandardError);
    }
}
