using System.Diagnostics;
using System.Net;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>The `sharpvisor` command itself, as a user runs it: the toolstack verbs (which start the daemon) and a standalone VMM.</summary>
public sealed class CliSessionTests
{
    [KvmFact]
    public async Task ACreateListConsoleShutdownSessionWorksAndRefusalsAreOneLine()
    {
        using var directory = new TempDirectory();
        string runtime = directory.File("run");
        string config = WriteConfig(directory, "hello.json", "loop=20000");
        string bad = directory.File("bad.json");
        File.WriteAllText(bad, """{"boot-source": {"kernel_image_path": "/k"}, "turbo": true}""");
        var env = new Dictionary<string, string> { [RuntimeDirectory.EnvironmentVariable] = runtime };
        try
        {
            Result created = Run(env, "create", config, "--accel", "kvm");
            Assert.Equal(0, created.ExitCode);
            Assert.Contains("created domain hello (id 1)", created.Stdout);
            Assert.True(File.Exists(Path.Combine(runtime, "sharpvisord.pid")), "the CLI started the daemon");

            AssertRefused(Run(env, "create", config), "a domain named 'hello' already exists");
            AssertRefused(Run(env, "create", bad), "turbo");
            AssertRefused(Run(env, "create", directory.File("missing.json")), "does not exist");

            Result list = Run(env, "list");
            Assert.Equal(0, list.ExitCode);
            Assert.Matches(@"1\s+hello\s+running\s+1\s+16\s+\S+\s+pc\s+kvm", list.Stdout);

            await Eventually.TrueAsync(() => Run(env, "console", "hello", "--history").Stdout.Contains("tick 2"), TimeSpan.FromSeconds(60), "the console shows ticks");
            Assert.Contains("Hello from a multiboot kernel", Run(env, "console", "hello", "--history").Stdout);

            // Stopping the daemon leaves the domain running; the next command starts a daemon that finds it.
            int firstDaemon = int.Parse(File.ReadAllText(Path.Combine(runtime, "sharpvisord.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            StopDaemon(runtime);
            Assert.Matches(@"1\s+hello\s+running", Run(env, "list").Stdout);
            Assert.NotEqual(firstDaemon, int.Parse(File.ReadAllText(Path.Combine(runtime, "sharpvisord.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture));

            Assert.Equal(0, Run(env, "pause", "hello").ExitCode);
            AssertRefused(Run(env, "pause", "hello"), "already paused");
            Assert.Equal(0, Run(env, "unpause", "hello").ExitCode);
            AssertRefused(Run(env, "mem-set", "hello", "8"), "balloon");
            AssertRefused(Run(env, "vcpu-pin", "hello", "4", "0"), "vCPU '4' does not exist");

            Result top = Run(env, "top", "--batch", "--iterations", "1", "--delay", "0.5");
            Assert.Equal(0, top.ExitCode);
            Assert.Matches(@"1\s+hello\s+running", top.Stdout);

            // The test kernel resets on Ctrl-Alt-Del: the domain boots again, same id, running.
            Result reboot = Run(env, "reboot", "hello", "--timeout", "30");
            Assert.True(reboot.ExitCode == 0, reboot.Stderr);
            Assert.Contains("domain hello rebooted: guest pulsed the i8042 reset line", reboot.Stdout);
            Assert.Matches(@"1\s+hello\s+running", Run(env, "list").Stdout);
            await Eventually.TrueAsync(
                () => Run(env, "console", "hello", "--history").Stdout.Split("Hello from a multiboot kernel").Length == 3,
                TimeSpan.FromSeconds(60),
                "the console shows a second boot");

            // The test kernel answers the ACPI power button by entering S5: a graceful shutdown.
            Result shutdown = Run(env, "shutdown", "hello", "--timeout", "30");
            Assert.Equal(0, shutdown.ExitCode);
            Assert.Contains("domain hello shut down: guest entered ACPI S5", shutdown.Stdout);
            Assert.Matches(@"1\s+hello\s+shutdown", Run(env, "list").Stdout);

            Assert.Equal(0, Run(env, "destroy", "hello").ExitCode);
            AssertRefused(Run(env, "destroy", "hello"), "no domain named 'hello'");
            Assert.Equal("[]", Run(env, "list", "--json").Stdout.Trim());
        }
        finally
        {
            StopDaemon(runtime);
        }
    }

    [KvmFact]
    public async Task AStandaloneVmmIsDrivenLikeFirecracker()
    {
        using var directory = new TempDirectory();
        string config = WriteConfig(directory, "vm.json", "loop=20000");
        string socket = directory.File("fc.sock");
        using Process vmm = Start("vmm", "--api-sock", socket, "--config-file", config, "--name", "fc-test", "--accel", "kvm");
        try
        {
            using HttpClient http = UnixSocketHttp.CreateClient(socket);
            await Eventually.TrueAsync(() => UnixSocketFiles.IsListening(socket), TimeSpan.FromSeconds(30), "the VMM listens");

            string info = await http.GetStringAsync("/");
            Assert.Contains("\"id\":\"fc-test\"", info);
            Assert.Contains("\"state\":\"Running\"", info);
            using (HttpResponseMessage pause = await http.PatchAsync("/vm", new StringContent("""{"state": "Paused"}""")))
            {
                Assert.Equal(HttpStatusCode.NoContent, pause.StatusCode);
            }

            Assert.Contains("\"state\":\"Paused\"", await http.GetStringAsync("/"));
            using (HttpResponseMessage late = await http.PutAsync("/machine-config", new StringContent("""{"vcpu_count": 2, "mem_size_mib": 64}""")))
            {
                Assert.Equal(HttpStatusCode.BadRequest, late.StatusCode);
            }

            using (HttpResponseMessage off = await http.PutAsync("/sharpvisor/power", new StringContent("""{"action": "PowerOff"}""")))
            {
                Assert.Equal(HttpStatusCode.NoContent, off.StatusCode);
            }

            Assert.True(vmm.WaitForExit(TimeSpan.FromSeconds(30)), "the VMM exits after the machine powers off");
            Assert.Equal(0, vmm.ExitCode);
            Assert.False(File.Exists(socket));
        }
        finally
        {
            // A failed assertion must not leave the VMM (and its guest) running.
            if (!vmm.HasExited)
            {
                vmm.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public void AStandaloneVmmWithABadConfigFileSaysWhyInOneLine()
    {
        using var directory = new TempDirectory();
        string config = directory.File("vm.json");
        File.WriteAllText(config, """{"machine-config": {"vcpu_count": 99, "mem_size_mib": 16}}""");

        Result result = Run(null, "vmm", "--api-sock", directory.File("fc.sock"), "--config-file", config);

        AssertRefused(result, "vcpu_count 99 is out of range");
        Assert.False(File.Exists(directory.File("fc.sock")));
    }

    private static string WriteConfig(TempDirectory directory, string name, string bootArgs)
    {
        string path = directory.File(name);
        File.WriteAllText(path, $$"""
            {
              "boot-source": {"kernel_image_path": "{{TestKernels.MultibootHello}}", "boot_args": "{{bootArgs}}"},
              "machine-config": {"vcpu_count": 1, "mem_size_mib": 16}
            }
            """);
        return path;
    }

    internal static void AssertRefused(Result result, string expected)
    {
        Assert.Equal(125, result.ExitCode);
        string line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("sharpvisor: error:", StringComparison.Ordinal));
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    internal static void StopDaemon(string runtime)
    {
        string pidFile = Path.Combine(runtime, "sharpvisord.pid");
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
        {
            using Process daemon = Process.GetProcessById(pid);
            Process.Start("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            daemon.WaitForExit(TimeSpan.FromSeconds(10));
        }

        // The daemon's (now empty) cgroup parent, named after its runtime directory.
        foreach (string mount in new[] { "/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpu" })
        {
            string group = Path.Combine(mount, new RuntimeDirectory(runtime).CgroupName);
            try
            {
                if (Directory.Exists(group))
                {
                    Directory.Delete(group);
                }
            }
            catch (IOException)
            {
            }
        }
    }

    private static Process Start(params string[] arguments)
    {
        var start = new ProcessStartInfo(SharpVisorCommand.Dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(SharpVisorCommand.AssemblyPath);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start)!;
    }

    internal static Result Run(IDictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(SharpVisorCommand.Dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(SharpVisorCommand.AssemblyPath);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"sharpvisor {string.Join(' ', arguments)} did not finish; stderr: {stderr.Result}");
        }

        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    internal sealed record Result(int ExitCode, string Stdout, string Stderr);
}
