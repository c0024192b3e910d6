using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// ACPI S3 with the stock Debian kernel on the emulator: `echo mem > /sys/power/state` goes
/// through Linux's whole suspend path (devices, the real-mode wakeup trampoline at the FACS
/// waking vector, kvmclock, the local APIC) and the shell carries on after the resume.
/// </summary>
public sealed class DefaultGuestSuspendTests : IDisposable
{
    private const string Hook = """
        echo "S3-STATES $(cat /sys/power/state) MEMSLEEP $(cat /sys/power/mem_sleep)"
        echo deep > /sys/power/mem_sleep
        echo mem > /sys/power/state
        echo "S3-RESUMED rc=$? success=$(cat /sys/power/suspend_stats/success)"
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("sv-s3-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestFact]
    public void TheDefaultGuestSuspendsToRamAndResumes()
    {
        using GuestRun run = GuestRun.Start(_directory, Hook + "\n", arguments: ["--accel", "emulator", "--memory", "256M"]);

        Assert.Contains("mem", run.WaitForLine("S3-STATES"));
        Assert.Equal("S3-RESUMED rc=0 success=1", run.WaitForLine("S3-RESUMED"));
        Assert.Equal(0, run.WaitForExit());
        Assert.Contains(run.Lines, l => l.Contains("ACPI: PM: Waking up from system sleep state S3", StringComparison.Ordinal));
        Assert.DoesNotContain(run.Lines, l => l.Contains("Call Trace:", StringComparison.Ordinal));
    }
}
