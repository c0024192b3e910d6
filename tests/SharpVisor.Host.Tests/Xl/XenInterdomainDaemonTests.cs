using System.Diagnostics;
using System.Text.Json;
using SharpVisor.Host.Daemon;
using Xunit.Abstractions;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>
/// Two Xen PVH domains under one daemon, each in its own VMM process (<see cref="XenLinkTestGuest"/>):
/// A allocates an unbound port for B and grants it two pages; B binds interdomain, grant-copies
/// the question out of A, copies its answer into A's writable grant and notifies; A takes the upcall
/// and finds the answer. B's hostile copies each get their GNTST status. B also maps A's grants
/// (GNTTABOP_map_grant_ref): reads and writes A's writable page through the map, cannot change
/// the read-only one, gets the GNTST status of each hostile map, and finds its own page back after
/// the unmap. Killing B's VMM leaves A running with the port unbound and the grant B still mapped
/// released. The tiny guests run in milliseconds on the emulator.
/// </summary>
public sealed class XenInterdomainDaemonTests(ITestOutputHelper output)
{
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task TwoDomainsShareAnEventChannelAndGrantCopiesThroughTheDaemon()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string granter = directory.File("granter.elf");
        string backend = directory.File("backend.elf");
        File.WriteAllBytes(granter, XenLinkTestGuest.Granter());
        File.WriteAllBytes(backend, XenLinkTestGuest.Backend());

        // The first character of each command line is the peer's domid: a fresh daemon numbers them 1, 2.
        string configA = directory.File("a.cfg");
        File.WriteAllText(configA, $"name = \"ida\"\ntype = \"pvh\"\nkernel = \"{granter}\"\nextra = \"2\"\nmemory = 32\n");
        string configB = directory.File("b.cfg");
        File.WriteAllText(configB, $"name = \"idb\"\ntype = \"pvh\"\nkernel = \"{backend}\"\nextra = \"1\"\nmemory = 32\n");
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Assert.Contains("created domain ida (id 1)", Ok(Run(env, "create", configA, "--accel", "emulator")));
            string a = await ConsoleLineAsync(env, "ida", "A: peer 2 port ");
            output.WriteLine(a);

            Assert.Contains("created domain idb (id 2)", Ok(Run(env, "create", configB, "--accel", "emulator")));
            await ConsoleLineAsync(env, "idb", "B: SENT");
            await ConsoleLineAsync(env, "ida", "A: ANSWER-OK");
            string consoleA = Console(env, "ida");
            string consoleB = Console(env, "idb");
            output.WriteLine(consoleA);
            output.WriteLine(consoleB);

            // The port A printed is the one B bound; the event arrived as an upcall with the port pending.
            string port = a.Split(' ')[4];
            Assert.Contains($"B: bound to port {port} local ", consoleB);
            Assert.Contains("A: upcall, port pending 1", consoleA);
            Assert.Contains("B: copy-from status 0", consoleB);
            Assert.Contains("B: QUESTION-SEEN", consoleB);
            Assert.Contains("B: copy-to status 0", consoleB);
            Assert.Contains("B: HOSTILE ungranted status -1", consoleB);          // GNTST_general_error
            Assert.Contains("B: HOSTILE readonly-write status -1", consoleB);     // GNTST_general_error
            Assert.Contains("B: HOSTILE bad-ref status -3", consoleB);            // GNTST_bad_gntref
            Assert.Contains("B: HOSTILE out-of-range status -10", consoleB);      // GNTST_bad_copy_arg
            Assert.Contains("B: HOSTILE foreign-frame status -8", consoleB);      // GNTST_permission_denied
            Assert.Contains("B: SENT 0", consoleB);

            // Grant maps: B sees A's pages at its own addresses, writes A's writable page, cannot write the read-only one.
            Assert.Contains("B: MAP writable status 0", consoleB);
            Assert.Contains("B: MAP-READ-OK", consoleB);
            Assert.Contains("B: MAP read-only status 0", consoleB);
            Assert.Contains("B: ROMAP-READ-OK", consoleB);
            Assert.Contains("B: ROMAP-WRITE-SURVIVED", consoleB);
            Assert.Contains("B: HOSTILE map-readonly-writable status -1", consoleB);  // GNTST_general_error
            Assert.Contains("B: HOSTILE map-ungranted status -1", consoleB);
            Assert.Contains("B: HOSTILE map-bad-ref status -3", consoleB);           // GNTST_bad_gntref
            Assert.Contains("B: HOSTILE map-no-domain status -2", consoleB);         // GNTST_bad_domain
            Assert.Contains("B: HOSTILE map-outside-ram status -1", consoleB);
            Assert.Contains("B: HOSTILE map-over-map status -1", consoleB);
            Assert.Contains("B: HOSTILE map-no-flags status -3", consoleB);
            Assert.Contains("B: HOSTILE unmap-bad-handle status -4", consoleB);      // GNTST_bad_handle
            Assert.Contains("B: UNMAP read-only status 0", consoleB);
            Assert.Contains("B: UNMAP writable status 0", consoleB);
            Assert.Contains("B: UNMAP again status -4", consoleB);
            Assert.Contains("B: OWN-PAGE-BACK", consoleB);
            Assert.Contains("B: MAP kept status 0", consoleB);
            await ConsoleLineAsync(env, "ida", "A: REF11-IN-USE ");
            consoleA = Console(env, "ida");
            Assert.Contains("A: MAP-WRITE-SEEN", consoleA);
            Assert.Contains("A: READONLY-INTACT", consoleA);
            Assert.Contains("A: REF11-IN-USE 24", consoleA);                          // GTF_reading | GTF_writing while B maps it
            Assert.DoesNotContain("FAIL", consoleA + consoleB);

            // The toolstack shows the channel from both sides, and the metrics count the traffic.
            Assert.Matches($@"\n{port}\s+interdomain\s+2\s+{port}\n", Ok(Run(env, "xen-channels", "ida")));
            Assert.Matches($@"\n{port}\s+interdomain\s+1\s+{port}\n", Ok(Run(env, "xen-channels", "idb")));
            using (var client = new SharpVisor.Host.Client.DaemonClient(new RuntimeDirectory(runtime).DaemonSocket, TimeSpan.FromSeconds(60)))
            {
                string metrics = await client.MetricsAsync();
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"idb\",id=\"2\",reason=\"xen-interdomain-sends\"} 1\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"ida\",id=\"1\",reason=\"xen-interdomain-sends-in\"} 1\n", metrics);
                Assert.Matches("sharpvisor_domain_exits_total\\{domain=\"idb\",id=\"2\",reason=\"xen-grant-copy-foreign\"\\} 5\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"ida\",id=\"1\",reason=\"xen-grant-copies\"} 2\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"idb\",id=\"2\",reason=\"xen-grant-map-ops\"} 10\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"idb\",id=\"2\",reason=\"xen-grant-unmap-ops\"} 4\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"idb\",id=\"2\",reason=\"xen-grant-maps-foreign\"} 3\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"ida\",id=\"1\",reason=\"xen-interdomain-grant-maps\"} 3\n", metrics);
                Assert.Contains("sharpvisor_domain_exits_total{domain=\"ida\",id=\"1\",reason=\"xen-interdomain-grant-unmaps\"} 2\n", metrics);
            }

            // Kill B's VMM: A's port goes back to unbound and A carries on.
            int pidB = Pid(env, "idb");
            Process.Start("kill", ["-KILL", pidB.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            await ConsoleLineAsync(env, "ida", "A: PEER-GONE port unbound for 2");
            await ConsoleLineAsync(env, "ida", "A: REF11-AFTER-PEER-GONE 0");          // B's kept map released by the link
            await ConsoleLineAsync(env, "ida", "A: STILL-RUNNING new port ");
            Assert.Matches(@"\n?\s*1\s+ida\s+running", Run(env, "list").Stdout);
            Assert.Matches($@"\n{port}\s+unbound\s+2\s+-\n", Ok(Run(env, "xen-channels", "ida")));

            Ok(Run(env, "destroy", "ida"));
        }
        finally
        {
            StopDaemon(runtime);
        }
    }

    private static string Console(IDictionary<string, string> env, string domain) => Run(env, "console", domain, "--history").Stdout;

    /// <summary>Waits for a console line starting with <paramref name="prefix"/> and returns it.</summary>
    private static async Task<string> ConsoleLineAsync(IDictionary<string, string> env, string domain, string prefix)
    {
        string? found = null;
        await Eventually.TrueAsync(
            () => (found = Console(env, domain).Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))) is not null,
            GuestTimeout,
            $"{domain} prints '{prefix}'");
        return found!.TrimEnd('\r');
    }

    private static int Pid(IDictionary<string, string> env, string domain)
    {
        using JsonDocument list = JsonDocument.Parse(Ok(Run(env, "list", "--json")));
        return list.RootElement.EnumerateArray().Single(d => d.GetProperty("name").GetString() == domain).GetProperty("pid").GetInt32();
    }

    private static string Ok(Result result)
    {
        Assert.True(result.ExitCode == 0, $"exit status {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }
}
