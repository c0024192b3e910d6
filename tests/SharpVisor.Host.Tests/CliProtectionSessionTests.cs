using System.Text.Json;
using SharpVisor.Host.Daemon;
using SharpVisor.TestSupport;
using static SharpVisor.Host.Tests.CliSessionTests;

namespace SharpVisor.Host.Tests;

/// <summary>
/// `sharpvisor protect` and `sharpvisor attest DOMAIN` against a real VMM process on KVM through the
/// daemon (docs/security.md): a domain created with a pins-only sharpvisor-protection section locks
/// from KVM's lock poll; its status shows, a lowering is refused, and its quote verifies with the
/// host key and the nonce (and not with another nonce). An unprotected domain is refused in one line.
/// </summary>
public sealed class CliProtectionSessionTests
{
    [KvmFact]
    public async Task AProtectedKvmDomainLocksRaisesAndAttestsThroughTheCli()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string config = TinyGuestConfig(directory, "guard.json", "loop=200000", "cr-pin,msr-pin,mode=log");
        string plain = TinyGuestConfig(directory, "plain.json", "loop=200000", policy: null);
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Assert.Equal(0, Run(env, "create", config, "--accel", "kvm").ExitCode);
            Assert.Equal(0, Run(env, "create", plain, "--accel", "kvm").ExitCode);

            // The test kernel prints ticks (port I/O exits): KVM's lock poll locks the pins-only policy.
            await Eventually.TrueAsync(() => Run(env, "protect", "guard").Stdout.Contains("locked        at"), TimeSpan.FromSeconds(60), "the domain locks");
            Result raised = Run(env, "protect", "guard", "cr-pin,msr-pin,measure=30");
            Assert.True(raised.ExitCode == 0, raised.Stderr);
            Assert.Contains("domain guard: protection cr-pin,msr-pin,measure=30,mode=enforce", raised.Stdout);
            AssertRefused(Run(env, "protect", "guard", "cr-pin"), "lowering a running domain's protection is refused");

            string quote = directory.File("quote.json");
            Result attest = Run(env, "attest", "guard", "--nonce", "00ff", "-o", quote);
            Assert.True(attest.ExitCode == 0, attest.Stderr);
            string key = Path.Combine(runtime, "attestation", "attestation-key.pub.pem");
            Result verified = Run(null, "attest", "verify", quote, "--key", key, "--nonce", "00ff");
            Assert.True(verified.ExitCode == 0, verified.Stderr);
            Assert.Contains("quote verifies", verified.Stdout);
            Assert.Contains("policy        cr-pin,msr-pin,measure=30,mode=enforce", verified.Stdout);
            Assert.Equal(1, Run(null, "attest", "verify", quote, "--key", key, "--nonce", "00fe").ExitCode);

            AssertRefused(Run(env, "protect", "plain"), "without kernel protection");
            AssertRefused(Run(env, "attest", "plain", "--nonce", "00ff"), "without kernel protection");
            AssertRefused(Run(env, "attest", "guard", "--nonce", "xyz"), "a nonce is 1 to 64 bytes");
        }
        finally
        {
            // Domains outlive their daemon (it re-adopts them on restart): destroy them, or their VMMs run on.
            Run(env, "destroy", "guard");
            Run(env, "destroy", "plain");
            StopDaemon(runtime);
        }
    }

    /// <summary>
    /// The event stream with a real violation (docs/security.md): the test kernel rewrites LSTAR
    /// after every tick ("wrlstar"), so once KVM's lock poll pinned it each write is an msr-pin
    /// violation (let through: mode=log). `sharpvisor events DOMAIN` and `sharpvisor events` follow
    /// them as JSON lines with the domain, kind, vCPU, RIP, target and value; an unprotected domain
    /// has no events to follow.
    /// </summary>
    [KvmFact]
    public void AGuestsViolationsStreamThroughTheDaemonToSharpvisorEvents()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string config = TinyGuestConfig(directory, "guard.json", "loop=200000 wrlstar", "cr-pin,msr-pin,mode=log");
        string plain = TinyGuestConfig(directory, "plain.json", "loop=200000", policy: null);
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Assert.Equal(0, Run(env, "create", config, "--accel", "kvm").ExitCode);
            Assert.Equal(0, Run(env, "create", plain, "--accel", "kvm").ExitCode);

            // Ends by itself after two events: the guest makes them as soon as its pins are locked.
            Result followed = Run(env, "events", "guard", "--count", "2");
            Assert.True(followed.ExitCode == 0, followed.Stderr);
            string[] lines = followed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length);
            var values = new HashSet<string>();
            foreach (string line in lines)
            {
                using JsonDocument e = JsonDocument.Parse(line);
                JsonElement root = e.RootElement;
                Assert.Equal("guard", root.GetProperty("domain").GetString());
                Assert.Equal("msr-pin", root.GetProperty("kind").GetString());
                Assert.Equal("0xc0000082", root.GetProperty("target").GetString());
                Assert.Equal(0, root.GetProperty("vcpu").GetInt32());
                Assert.NotEqual("0x0", root.GetProperty("rip").GetString());
                Assert.False(root.GetProperty("blocked").GetBoolean());
                values.Add(root.GetProperty("value").GetString()!);
            }

            Assert.Equal(2, values.Count); // two different tick counters: two writes, not one event twice

            // Every domain: the protected one's events; the unprotected one is left out.
            Result all = Run(env, "events", "--count", "1");
            Assert.True(all.ExitCode == 0, all.Stderr);
            Assert.Contains("\"domain\":\"guard\"", all.Stdout);
            AssertRefused(Run(env, "events", "plain", "--count", "1"), "without kernel protection");
        }
        finally
        {
            Run(env, "destroy", "guard");
            Run(env, "destroy", "plain");
            StopDaemon(runtime);
        }
    }

    /// <summary>A Firecracker JSON file for the multiboot test kernel (16 MiB, one vCPU), with a protection policy when given.</summary>
    private static string TinyGuestConfig(TempDirectory directory, string name, string bootArgs, string? policy)
    {
        string path = directory.File(name);
        string protection = policy is null ? "" : $",\n  \"sharpvisor-protection\": {{\"policy\": \"{policy}\"}}";
        File.WriteAllText(path, $$"""
            {
              "boot-source": {"kernel_image_path": "{{TestKernels.MultibootHello}}", "boot_args": "{{bootArgs}}"},
              "machine-config": {"vcpu_count": 1, "mem_size_mib": 16}{{protection}}
            }
            """);
        return path;
    }
}
