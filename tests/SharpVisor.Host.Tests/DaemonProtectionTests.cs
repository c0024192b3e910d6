using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Tests.Fakes;
using SharpVisor.Machine.Protection;
using SharpVisor.Security;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Kernel protection through the daemon (docs/security.md): a domain created with a
/// sharpvisor-protection section, its status and a raised policy through the daemon, a lowering
/// refused, a quote for a nonce, the violation counter in /metrics, and the domain's measurement
/// log in its runtime directory.
/// </summary>
public sealed class DaemonProtectionTests
{
    [Fact]
    public async Task StatusRaiseQuoteAndMetricsGoThroughTheDaemon()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        CreateDomainRequest request = host.Request("web");
        await host.Client.CreateAsync(request with { Config = request.Config with { Protection = new ProtectionConfiguration { Policy = "cr-pin,mode=log" } } });
        KernelProtector protector = launcher.Factory.Find("web").Protector!;

        ProtectionStatus status = await host.Client.GetProtectionAsync("web");
        Assert.Equal("cr-pin,mode=log", status.Policy);
        Assert.False(status.Locked);

        // The daemon keeps the domain's append-only measurement log in its runtime directory, 0600.
        string measurementLog = Path.Combine(host.Runtime.Domain(1).Directory, "measurement.log");
        Assert.Equal(measurementLog, protector.Policy.MeasurementLogPath);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(measurementLog));

        status = await host.Client.RaiseProtectionAsync("web", "cr-pin,msr-pin,measure=5");
        Assert.Equal("cr-pin,msr-pin,measure=5,mode=enforce", status.Policy);
        Assert.Equal(measurementLog, protector.Policy.MeasurementLogPath);
        DaemonException lowered = await Assert.ThrowsAsync<DaemonException>(() => host.Client.RaiseProtectionAsync("web", "cr-pin"));
        Assert.Equal(400, lowered.StatusCode);
        Assert.Contains("lowering", lowered.Message);

        protector.Map.Report(ProtectionViolationKind.KernelWrite, 0, 0xFFFF_FFFF_C000_1000, 0xFFFF_8880_0100_0000, 0x90);
        protector.Map.Report(ProtectionViolationKind.KernelWrite, 0, 0xFFFF_FFFF_C000_1000, 0xFFFF_8880_0100_0001, 0x90);
        string metrics = await host.Client.MetricsAsync();
        Assert.Contains("# TYPE sharpvisor_protection_violations_total counter", metrics);
        Assert.Contains("sharpvisor_protection_violations_total{domain=\"web\",id=\"1\",kind=\"kernel-write\"} 2\n", metrics);
        Assert.Contains("sharpvisor_protection_violations_total{domain=\"web\",id=\"1\",kind=\"msr-pin\"} 0\n", metrics);
        Assert.Equal(2, (await host.Client.GetProtectionAsync("web")).RecentViolations.Count);

        string quoteJson = await host.Client.AttestAsync("web", "c0ffee");
        AttestationQuote quote = AttestationQuote.Parse(quoteJson);
        string publicKey = File.ReadAllText(Path.Combine(host.Runtime.Domain(1).Directory, "attestation", AttestationKey.PublicKeyFile));
        QuotePayload? payload = quote.Verify(publicKey, "c0ffee", null, out string reason);

        // Not locked (no guest ran): the signature and nonce hold, and the verifier says why it refuses.
        Assert.Null(payload);
        Assert.Contains("lock", reason);
        Assert.Null(quote.Verify(publicKey, "c0ffef", null, out string wrongNonce));
        Assert.Contains("nonce", wrongNonce);
        DaemonException badNonce = await Assert.ThrowsAsync<DaemonException>(() => host.Client.AttestAsync("web", "xyz"));
        Assert.Equal(400, badNonce.StatusCode);
    }

    [Fact]
    public async Task TheEventStreamReplaysRecentViolationsThenFollowsNewOnes()
    {
        var launcher = new InProcessVmmLauncher();
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(launcher);
        CreateDomainRequest request = host.Request("web");
        await host.Client.CreateAsync(request with { Config = request.Config with { Protection = new ProtectionConfiguration { Policy = "cr-pin,msr-pin" } } });
        KernelProtector protector = launcher.Factory.Find("web").Protector!;

        // Through the map, as a vCPU reports: one before following (replayed), one while following.
        protector.Map.Report(ProtectionViolationKind.ModelSpecificRegister, 0, 0xFFFF_FFFF_8100_0000, 0xC000_0082, 0x1234);
        var lines = new List<string>();
        var first = new TaskCompletionSource();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Task following = host.Client.FollowEventsAsync("web", line =>
        {
            lines.Add(line);
            first.TrySetResult();
            return lines.Count < 2;
        }, timeout.Token);
        await first.Task.WaitAsync(timeout.Token);
        protector.Map.Report(ProtectionViolationKind.ControlRegister, 1, 0xFFFF_FFFF_8100_0010, 4, 0x6F0);
        await following;

        Assert.Equal(2, lines.Count);
        Assert.StartsWith("{\"domain\":\"web\",\"id\":1,", lines[0]);
        Assert.Contains("\"kind\":\"msr-pin\"", lines[0]);
        Assert.Contains("\"rip\":\"0xffffffff81000000\",\"target\":\"0xc0000082\",\"value\":\"0x1234\",\"blocked\":true", lines[0]);
        Assert.Contains("\"kind\":\"cr-pin\",\"vcpu\":1,", lines[1]);

        // A domain without protection has no events to follow.
        await host.Client.CreateAsync(host.Request("plain"));
        DaemonException refused = await Assert.ThrowsAsync<DaemonException>(() => host.Client.FollowEventsAsync("plain", _ => false));
        Assert.Equal(400, refused.StatusCode);
        Assert.Contains("without kernel protection", refused.Message);
    }
}
