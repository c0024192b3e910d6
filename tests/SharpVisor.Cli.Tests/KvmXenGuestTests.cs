namespace SharpVisor.Cli.Tests;

/// <summary>
/// The default guest as a Xen domain on KVM's Xen support (docs/xen.md, "Accelerators"): the same
/// Xen layer as on the emulator, its hypercalls arriving as KVM_EXIT_XEN. Runs only where KVM has
/// KVM_CAP_XEN_HVM (<see cref="KvmXenGuestFactAttribute"/>); the development host reports 0.
/// </summary>
public sealed class KvmXenGuestTests : IDisposable
{
    private const string Hook =
        "echo \"XEN-TYPE $(cat /sys/hypervisor/type)\"\n" +
        "dmesg | grep -m1 -E 'Booting (paravirtualized )?kernel on' | sed 's/^.*Booting/DMESG Booting/'\n" +
        "dmesg | grep -m1 'Xen HVM callback vector' | sed 's/^.*xen:events:/DMESG events:/'\n" +
        "grep -o '^hvc0' /proc/consoles | sed 's/^/CONSOLE /'\n" +
        "exec 3<>/dev/xen/xenbus\n" +
        "printf '\\002\\000\\000\\000\\007\\000\\000\\000\\000\\000\\000\\000\\005\\000\\000\\000name\\000' >&3\n" +
        "echo \"XS-NAME $(dd bs=256 count=1 <&3 2>/dev/null | tail -c 16)\"\n";

    private readonly string _directory = Directory.CreateTempSubdirectory("sv-kvmxen-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [KvmXenGuestFact]
    public void ThePvhGuestBootsOnKvmsXenSupport() => Boot("pvh", "DMESG Booting kernel on Xen PVH");

    [KvmXenGuestFact]
    public void TheHvmGuestBootsOnKvmsXenSupport() => Boot("hvm", "DMESG Booting paravirtualized kernel on Xen HVM");

    private void Boot(string type, string booting)
    {
        using GuestRun run = GuestRun.Start(_directory, Hook, arguments: ["--xen", type, "--accel", "kvm", "--memory", "256M", "--cpus", "2"], commandLine: "console=hvc0 reboot=k panic=-1");

        Assert.Equal("XEN-TYPE xen", run.WaitForLine("XEN-TYPE"));
        Assert.Equal(booting, run.WaitForLine("DMESG Booting"));
        Assert.Equal("DMESG events: Xen HVM callback vector for event delivery is enabled", run.WaitForLine("DMESG events"));
        Assert.Equal("CONSOLE hvc0", run.WaitForLine("CONSOLE"));
        Assert.Equal("XS-NAME sharpvisor-guest", run.WaitForLine("XS-NAME"));
        Assert.Equal(0, run.WaitForExit());

        string[] lines = run.Lines;
        Assert.Contains(lines, l => l.Contains("smpboot: Total of 2 processors activated", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("xen:grant_table: Grant tables using version 1 layout", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Call Trace:", StringComparison.Ordinal) || l.Contains("Kernel panic", StringComparison.Ordinal));
        Assert.Contains("kvm with KVM's Xen support", run.StandardError);
    }
}
