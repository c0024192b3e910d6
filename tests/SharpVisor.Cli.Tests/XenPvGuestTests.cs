using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// --xen pv on the default kernel (docs/xen-pv.md): the kernel starts at CPL 3 on the builder's
/// pinned tables, makes its hypercalls by SYSCALL, rebuilds its page tables through mmu_update and
/// mmuext_op (and plain stores into its L1 tables, which the writable-page-tables assist applies),
/// brings up its PV console, runs /init and the hook as user processes (fork and exec go through
/// the validated page tables), and powers off through SCHEDOP_shutdown.
/// </summary>
public sealed class XenPvGuestTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sv-xenpv-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestFact]
    public void TheDefaultKernelBootsAsAXenPvGuestRunsItsHookAndPowersOff()
    {
        const string Hook =
            "echo \"XEN-TYPE $(cat /sys/hypervisor/type) $(cat /sys/hypervisor/guest_type)\"\n" +
            "dmesg | grep -m1 'Booting kernel on' | sed 's/^.*Booting/DMESG Booting/'\n" +
            "echo \"FORKED $(echo child | cat)\"\n";
        using GuestRun run = GuestRun.Start(_directory, Hook, arguments: ["--xen", "pv", "--memory", "256M"], commandLine: "console=hvc0 reboot=k panic=-1");

        Assert.Equal("XEN-TYPE xen PV", run.WaitForLine("XEN-TYPE"));
        Assert.Equal("DMESG Booting kernel on Xen", run.WaitForLine("DMESG Booting"));
        Assert.Equal("FORKED child", run.WaitForLine("FORKED"));
        Assert.Equal(0, run.WaitForExit());
        string[] lines = run.Lines;
        Assert.Contains(lines, l => l.Contains("Linux version 6.", StringComparison.Ordinal));
        // No oops, no BUG, no panic, no warning with a call trace, no failed multicall; the builder's
        // mappings past the kernel are cleaned up as on Xen (the P2M list at INIT_P2M), so the W+X
        // check passes; the grant table's frames are real machine frames, so no L1 entry is refused.
        Assert.DoesNotContain(lines, l => l.Contains("Oops", StringComparison.Ordinal) || l.Contains("BUG:", StringComparison.Ordinal) || l.Contains("Kernel panic", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Call Trace:", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("multicall(s) failed", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("x86/mm: Checked W+X mappings: passed, no W+X pages found.", StringComparison.Ordinal));
        Assert.DoesNotContain("refused", run.StandardError);
    }
}
