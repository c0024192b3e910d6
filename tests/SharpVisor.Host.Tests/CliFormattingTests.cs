using SharpVisor.Cli.Commands;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Tests;

public sealed class CliFormattingTests
{
    [Fact]
    public void TopShowsRatesBetweenTwoSamples()
    {
        DomainStats before = Stats(cpuSeconds: 10.0, io: 1000, hlt: 50);
        DomainStats after = Stats(cpuSeconds: 10.5, io: 3000, hlt: 150);

        string screen = TopCommand.Format([before], [after], seconds: 2.0);

        string row = screen.Split('\n')[1];
        Assert.Matches(@"^\s+1\s+web\s+running\s+25\.0\s+64\s+128\s+2\s+1050\s+io=1000 hlt=50$", row);
    }

    [Fact]
    public void TopShowsAXenDomainsHypercallsEventsGrantsAndXenStoreOnALineOfTheirOwn()
    {
        static DomainStats Xen(long n) => Stats(cpuSeconds: 1.0, io: 10 * n, hlt: n) with
        {
            Exits = new Dictionary<string, long>
            {
                ["io"] = 10 * n,
                ["hlt"] = n,
                ["xen-hypercalls"] = 100 * n,
                ["xen-upcalls"] = 20 * n,
                ["xen-evtchn-sends"] = 30 * n,
                ["xen-grant-copies"] = 40 * n,
                ["xen-grant-copy-bytes"] = 4096 * 40 * n,
                ["xen-xenstore-requests"] = 5 * n,
                ["xen-interdomain-sends"] = 6 * n,
                ["xen-grant-copy-foreign"] = 7 * n,
                ["xen-grant-map-ops"] = 8 * n,
                ["xen-grant-unmap-ops"] = 9 * n,
                ["xen-grant-maps-foreign"] = 4 * n,
            },
        };

        string[] lines = TopCommand.Format([Xen(1)], [Xen(3)], seconds: 2.0).Split('\n');

        Assert.Matches(@"^\s+1\s+web\s+running\s+0\.0\s+64\s+128\s+2\s+11\s+io=10 hlt=1$", lines[1]);   // xen-* are not exits
        Assert.Equal("     xen/s: hypercalls=100 upcalls=20 evtchn-sends=30 grant-copies=40 grant-maps=0 map-ops=8 unmap-ops=9 xenstore=5 idd-sends=6 idd-copies=7 idd-maps=4", lines[2]);
    }

    [Fact]
    public void TopShowsADashWhenThereIsNoProcess()
    {
        DomainStats dead = Stats(cpuSeconds: null, io: 0, hlt: 0) with { State = "crashed", ResidentBytes = null };

        string row = TopCommand.Format([dead], [dead], seconds: 1.0).Split('\n')[1];

        Assert.Matches(@"^\s+1\s+web\s+crashed\s+-\s+-\s+128", row);
    }

    [Fact]
    public void ListShowsEachDomainAndWhyItStopped()
    {
        DomainInfo running = Info("web", "running", 125.0, null);
        DomainInfo crashed = Info("database", "crashed", null, "vCPU 0 triple-faulted (shutdown)\nRIP: ...");

        string[] lines = ListCommand.Format([running, crashed]).Split('\n');

        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^\s+1\s+web\s+running\s+1\s+64\s+0:02:05\s+pc\s+kvm$", lines[1]);
        Assert.Matches(@"^\s+1\s+database\s+crashed\s+1\s+64\s+-\s+pc\s+kvm\s+\(vCPU 0 triple-faulted \(shutdown\)\)$", lines[2]);
    }

    private static DomainStats Stats(double? cpuSeconds, long io, long hlt) => new()
    {
        Id = 1,
        Name = "web",
        State = "running",
        CpuSeconds = cpuSeconds,
        ResidentBytes = 64L << 20,
        MemoryMib = 128,
        Vcpus = 2,
        Exits = new Dictionary<string, long> { ["io"] = io, ["hlt"] = hlt },
        Devices = [new DeviceCounters("serial0", 0, 0, 10, 10)],
    };

    private static DomainInfo Info(string name, string state, double? uptime, string? detail) => new()
    {
        Id = 1,
        Name = name,
        State = state,
        Vcpus = 1,
        MemoryMib = 64,
        Accelerator = "kvm",
        UptimeSeconds = uptime,
        Detail = detail,
        Schedule = new DomainSchedule(),
        CreatedAt = DateTimeOffset.UnixEpoch,
    };
}
