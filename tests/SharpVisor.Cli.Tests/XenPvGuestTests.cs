using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// --xen pv on the default kernel (docs/xen-pv.md): the furthest milestone the PV boot reaches
/// reliably. The kernel runs xen_start_kernel at CPL 3 on the builder's pinned tables, makes its
/// hypercalls by SYSCALL (features, machphys mapping, update_va_mapping, set_gdt, set_segment_base,
/// set_trap_table, mmu_update/mmuext_op while it rebuilds its page tables, physdev_op) and writes
/// both of its early lines through console_io. It does not reach "Linux version" yet.
/// </summary>
public sealed class XenPvGuestTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sv-xenpv-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestFact]
    public void TheDefaultKernelRunsItsPvStartOfDayOnXenPv()
    {
        using GuestRun run = GuestRun.Start(_directory, "echo unreachable\n", arguments: ["--xen", "pv", "--memory", "256M"], commandLine: "console=hvc0 earlyprintk=xen");

        // Both lines come after hypercalls that had to succeed (features, the GDT, the trap table; then the
        // kernel's own page tables pinned and switched to through mmuext_op), so they are the milestones.
        Assert.Equal("mapping kernel into physical memory", run.WaitForLine("mapping kernel", TimeSpan.FromMinutes(5)));
        Assert.Equal("about to get started...", run.WaitForLine("about to get started", TimeSpan.FromMinutes(5)));
        run.KillHard();
    }
}
