using System.Diagnostics;
using System.Globalization;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// `sharpvisor jailer`: Firecracker's jailer contract around SharpVisor's firecracker. Refusals
/// word for word as Firecracker's jailer; then real jails (root): the jailed VMM's API socket in
/// &lt;base&gt;/firecracker/&lt;id&gt;/root, answering and booting the tiny Multiboot kernel copied into the
/// jail, the process under the uid/gid given, in the cgroup (and the value written), in the netns
/// given, with the jail as its root, without the descriptor its parent left open; and --daemonize --new-pid-ns: pid 1 of a new pid namespace in
/// its own session, stdio on /dev/null, its pid in &lt;exec-file&gt;.pid.
/// </summary>
public sealed class JailerTests
{
    private const string Uid = "4242";
    private const string Gid = "4343";

    [Fact]
    public void BadArgumentsAreRefusedWithFirecrackersMessages()
    {
        using var directory = new TempDirectory();
        string launcher = JailerProcess.WriteLauncher(directory.Path);
        string baseDir = Directory.CreateDirectory(directory.File("base")).FullName;
        string[] valid = ["--exec-file", launcher, "--uid", Uid, "--gid", Gid, "--chroot-base-dir", baseDir];

        (string[] Arguments, string Message, string Variant)[] cases =
        [
            ([], "Failed to parse arguments: Argument 'exec-file' required, but not found.", "ArgumentParsing(MissingArgument(\"exec-file\"))"),
            (["--exec-file", launcher, "--uid", Uid, "--gid", Gid], "Failed to parse arguments: Argument 'id' required, but not found.", "ArgumentParsing(MissingArgument(\"id\"))"),
            (["--id", "a", "--bogus", .. valid], "Failed to parse arguments: Found argument 'bogus' which wasn't expected, or isn't valid in this context.", "ArgumentParsing(UnexpectedArgument(\"bogus\"))"),
            (["--id", "a", "--uid", "1", .. valid], "Failed to parse arguments: The argument 'uid' was provided more than once.", "ArgumentParsing(DuplicateArgument(\"uid\"))"),
            (["--id", "a", "--netns", .. valid], "Failed to parse arguments: The argument 'netns' requires a value, but none was supplied.", "ArgumentParsing(MissingValue(\"netns\"))"),
            (["--id", "a_b", .. valid], "Invalid instance ID: Invalid char (_) at position 1", "InvalidInstanceId(InvalidChar(_, 1))"),
            (["--id", new string('a', 65), .. valid], "Invalid instance ID: Invalid len (65);  the length must be between 1 and 64", "InvalidInstanceId(InvalidLen(65, 1, 64))"),
            (["--id", "a", "--exec-file", "/nonexistent/firecracker", "--uid", Uid, "--gid", Gid], "Failed to canonicalize path /nonexistent/firecracker: No such file or directory (os error 2)", "Canonicalize"),
            (["--id", "a", "--exec-file", launcher, "--uid", Uid, "--gid", Gid, "--chroot-base-dir", launcher], $"{launcher} is not a directory", "NotADirectory"),
            (["--id", "a", "--exec-file", launcher, "--uid", "root", "--gid", Gid, "--chroot-base-dir", baseDir], "Invalid uid: root", "Uid(\"root\")"),
            (["--id", "a", "--exec-file", launcher, "--uid", Uid, "--gid", "-1", "--chroot-base-dir", baseDir], "Invalid gid: -1", "Gid(\"-1\")"),
            (["--id", "a", "--parent-cgroup", "../escape", .. valid], "Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'", "CgroupInvalidParentPath"),
            (["--id", "a", "--cgroup-version", "x", .. valid], "x is an invalid cgroup version specifier", "CgroupInvalidVersion(\"x\")"),
            (["--id", "a", "--resource-limit", "fsize", .. valid], "Invalid format for resources limits: fsize", "ResLimitFormat(\"fsize\")"),
            (["--id", "a", "--resource-limit", "no-file=lots", .. valid], "Invalid limit value for resource: lots: invalid digit found in string", "ResLimitValue(\"lots\""),
            (["--id", "a", "--resource-limit", "cpu=1", .. valid], "Invalid resource argument: cpu", "ResLimitArgument(\"cpu\")"),
        ];

        foreach ((string[] arguments, string message, string variant) in cases)
        {
            (int exitCode, string output, string error) = JailerProcess.Run(arguments);
            string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(exitCode == 1, $"{string.Join(' ', arguments)}: exit status {exitCode}, stderr: {error}");
            Assert.True(lines.Length == 2 && lines[0] == message && lines[1].StartsWith("Error: " + variant, StringComparison.Ordinal), $"{string.Join(' ', arguments)}: stderr was:\n{error}");
            Assert.Equal("", output);
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(baseDir));
        (int helpExit, string help, _) = JailerProcess.Run(["--help"]);
        Assert.Equal(0, helpExit);
        Assert.Contains("required arguments:", help);
        Assert.Contains("  --cgroup <cgroup>", help);
        Assert.Contains("Any arguments after the -- separator will be supplied to the jailed binary.", help);
    }

    [JailerFact]
    public async Task AJailedFirecrackerRunsItsGuestAsTheUserInTheCgroupNetnsAndRootGiven()
    {
        using var directory = new TempDirectory();
        // The real drop-in: out/firecracker, the NativeAOT front end, which execs the JIT VMM (this
        // test build, bound into the jail at /cli) at InstanceStart.
        string launcher = SharpVisorCommand.FrontEndPath;
        string baseDir = Directory.CreateDirectory(directory.File("base")).FullName;
        using NetworkNamespace ns = NetworkNamespace.Create();
        JailerCgroup cgroup = JailerCgroup.Find(preferVersion: 2) ?? throw new Xunit.Sdk.XunitException("this host offers no cgroup controller a jail can use");
        string id = "jail-" + Guid.NewGuid().ToString("N")[..8];
        string root = Path.Combine(baseDir, "firecracker", id, "root");
        string socket = Path.Combine(root, "run", "firecracker.socket");
        string inherited = directory.CreateFile("inherited-descriptor");

        await using var jailer = JailerProcess.Start(
        [
            "--id", id, "--exec-file", launcher, "--uid", Uid, "--gid", Gid, "--chroot-base-dir", baseDir,
            "--netns", $"/var/run/netns/{ns.Name}",
            "--cgroup-version", cgroup.Version.ToString(CultureInfo.InvariantCulture), "--cgroup", $"{cgroup.File}={cgroup.Value}", "--parent-cgroup", JailerCgroup.Parent,
            "--resource-limit", "no-file=1536",
        ],
        inheritedFile: inherited);
        try
        {
            await Eventually.TrueAsync(() => UnixSocketFiles.IsListening(socket), TimeSpan.FromSeconds(90), "the jailed VMM's API socket listens at <root>/run/firecracker.socket");

            // The jailer exec'd the exec-file: same pid, written to <root>/firecracker.pid.
            int pid = jailer.Pid;
            Assert.Equal(pid.ToString(CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(root, "firecracker.pid")));
            AssertCredentials(pid);
            Assert.Contains("Max open files            1536                 1536", File.ReadAllText($"/proc/{pid}/limits"));
            string[] descriptors = [.. Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Select(fd => new FileInfo(fd).LinkTarget ?? "")];
            Assert.DoesNotContain(inherited, descriptors);

            Assert.True(cgroup.ListsProcessIn(File.ReadAllText($"/proc/{pid}/cgroup"), id), $"/proc/{pid}/cgroup:\n{File.ReadAllText($"/proc/{pid}/cgroup")}");
            Assert.Equal(cgroup.Value, File.ReadAllText(Path.Combine(cgroup.Directory(id), cgroup.File)).Trim());

            string jailedNetns = new FileInfo($"/proc/{pid}/ns/net").LinkTarget!;
            Assert.Equal(ns.Enter(() => new FileInfo("/proc/thread-self/ns/net").LinkTarget), jailedNetns);
            Assert.NotEqual(new FileInfo("/proc/self/ns/net").LinkTarget, jailedNetns);

            // Its root is the jail: the same directory, and nothing of the host's but what was bound in.
            Assert.Equal(StatIdentity(root), StatIdentity($"/proc/{pid}/root/"));
            Assert.False(Directory.Exists($"/proc/{pid}/root/etc"), "the host's /etc is not in the jail");
            Assert.False(Directory.Exists($"/proc/{pid}/root/home"), "the host's /home is not in the jail");
            foreach (string device in File.Exists("/dev/kvm") ? new[] { "dev/net/tun", "dev/kvm", "dev/urandom" } : ["dev/net/tun", "dev/urandom"])
            {
                Assert.Equal($"{Uid}:{Gid} character special file", Stat("-c", "%u:%g %F", Path.Combine(root, device)));
            }

            Assert.Equal($"{Uid}:{Gid}", Stat("-c", "%u:%g", root));
            Assert.Equal($"{Uid}:{Gid}", Stat("-c", "%u:%g", Path.Combine(root, "firecracker")));

            (int status, string info) = Curl(socket, "GET", "/", null);
            Assert.Equal(200, status);
            Assert.Contains($"\"id\":\"{id}\"", info);

            // A guest, its kernel put in the jail as Firecracker's docs say (paths are the jail's).
            File.Copy(TestKernels.MultibootHello, Path.Combine(root, "hello.elf"));
            Assert.Equal("", Run("chown", $"{Uid}:{Gid}", Path.Combine(root, "hello.elf")));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 16}"""));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/boot-source", """{"kernel_image_path": "/hello.elf", "boot_args": "loop=20000"}"""));
            Assert.DoesNotContain("libcoreclr", File.ReadAllText($"/proc/{pid}/maps"));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/actions", """{"action_type": "InstanceStart"}"""));
            await jailer.WaitForLineAsync("Hello from a multiboot kernel", TimeSpan.FromSeconds(120));
            Assert.Contains("libcoreclr", File.ReadAllText($"/proc/{pid}/maps"));
            Assert.Equal((204, ""), Curl(socket, "PUT", "/sharpvisor/power", """{"action": "PowerOff"}"""));
            Assert.True(await jailer.ExitsWithinAsync(TimeSpan.FromSeconds(60)), "the jailed VMM exits after the machine powers off");
            Assert.Equal(0, jailer.ExitCode);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\nconsole:\n{jailer.Output}\nstandard error:\n{await jailer.StandardErrorAsync()}");
        }
        finally
        {
            await jailer.StandardErrorAsync();
            cgroup.Remove(id);
        }
    }

    [JailerFact]
    public async Task ADaemonizedJailRunsAsPidOneOfANewPidNamespaceInItsOwnSession()
    {
        using var directory = new TempDirectory();
        string launcher = JailerProcess.WriteLauncher(directory.Path);
        string baseDir = Directory.CreateDirectory(directory.File("base")).FullName;
        JailerCgroup cgroup = JailerCgroup.Find(preferVersion: 1) ?? throw new Xunit.Sdk.XunitException("this host offers no cgroup controller a jail can use");
        string id = "jail-" + Guid.NewGuid().ToString("N")[..8];
        string root = Path.Combine(baseDir, "firecracker", id, "root");

        (int exitCode, string output, string error) = JailerProcess.Run(
        [
            "--id", id, "--exec-file", launcher, "--uid", Uid, "--gid", Gid, "--chroot-base-dir", baseDir, "--daemonize", "--new-pid-ns",
            "--cgroup-version", cgroup.Version.ToString(CultureInfo.InvariantCulture), "--cgroup", $"{cgroup.File}={cgroup.Value}", "--parent-cgroup", JailerCgroup.Parent,
            "--resource-limit", "fsize=8589934592", "--resource-limit", "no-file=1024",
            "--", "--api-sock", "/api.sock",
        ]);

        // fsize also bounds memfds: the guest's RAM and the .NET runtime's double-mapped code are memfds, so it is generous here.
        Assert.True(exitCode == 0, $"the jailer exits 0 once the daemon runs; status {exitCode}, stdout {output}, stderr {error}");
        int pid = int.Parse(File.ReadAllText(Path.Combine(root, "firecracker.pid")), CultureInfo.InvariantCulture);
        try
        {
            // The --api-sock given, relative to the jail.
            string socket = Path.Combine(root, "api.sock");
            await Eventually.TrueAsync(() => UnixSocketFiles.IsListening(socket), TimeSpan.FromSeconds(90), "the daemonized VMM's API socket listens at <root>/api.sock");
            (int status, string info) = Curl(socket, "GET", "/", null);
            Assert.Equal(200, status);
            Assert.Contains($"\"id\":\"{id}\"", info);

            string processStatus = File.ReadAllText($"/proc/{pid}/status");
            Assert.Contains($"NSpid:\t{pid}\t1\n", processStatus);
            string[] stat = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(pid.ToString(CultureInfo.InvariantCulture), stat[3]); // the session: its own (after the state, ppid and process group)
            foreach (int fd in new[] { 0, 1, 2 })
            {
                Assert.Equal("/dev/null", new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget);
            }

            AssertCredentials(pid);
            string limits = File.ReadAllText($"/proc/{pid}/limits");
            Assert.Contains("Max file size             8589934592           8589934592", limits);
            Assert.Contains("Max open files            1024                 1024", limits);
            Assert.True(cgroup.ListsProcessIn(File.ReadAllText($"/proc/{pid}/cgroup"), id), $"/proc/{pid}/cgroup:\n{File.ReadAllText($"/proc/{pid}/cgroup")}");
            Assert.Equal(cgroup.Value, File.ReadAllText(Path.Combine(cgroup.Directory(id), cgroup.File)).Trim());
            Assert.Equal(StatIdentity(root), StatIdentity($"/proc/{pid}/root/"));
        }
        finally
        {
            try
            {
                using Process daemon = Process.GetProcessById(pid);
                daemon.Kill();
                daemon.WaitForExit(TimeSpan.FromSeconds(30));
            }
            catch (ArgumentException)
            {
                // Already gone.
            }

            cgroup.Remove(id);
        }
    }

    /// <summary>The uid/gid given, no supplementary group, no capability, and no way back (no_new_privs).</summary>
    private static void AssertCredentials(int pid)
    {
        string status = File.ReadAllText($"/proc/{pid}/status");
        Assert.Contains($"Uid:\t{Uid}\t{Uid}\t{Uid}\t{Uid}\n", status);
        Assert.Contains($"Gid:\t{Gid}\t{Gid}\t{Gid}\t{Gid}\n", status);
        Assert.Contains("Groups:\t\n", status.Replace("Groups:\t \n", "Groups:\t\n", StringComparison.Ordinal));
        Assert.Contains("CapEff:\t0000000000000000\n", status);
        Assert.Contains("CapPrm:\t0000000000000000\n", status);
        Assert.Contains("NoNewPrivs:\t1\n", status);
    }

    /// <summary>Device and inode of what a path names (following links): two paths to one directory agree.</summary>
    private static string StatIdentity(string path) => Stat("-L", "-c", "%d:%i", path);

    private static string Stat(params string[] arguments) => Run("stat", arguments).Trim();

    private static string Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)}: {error}");
        return output;
    }

    private static (int Status, string Body) Curl(string socket, string method, string path, string? json)
    {
        var start = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { "-sS", "--unix-socket", socket, "-X", method, "-H", "Content-Type: application/json", "-w", "\n%{http_code}" })
        {
            start.ArgumentList.Add(argument);
        }

        if (json is not null)
        {
            start.ArgumentList.Add("--data");
            start.ArgumentList.Add(json);
        }

        start.ArgumentList.Add("http://localhost" + path);
        using Process curl = Process.Start(start)!;
        string output = curl.StandardOutput.ReadToEnd();
        curl.WaitForExit();
        Assert.True(curl.ExitCode == 0, $"curl {method} {path} failed: {curl.StandardError.ReadToEnd()}");
        int split = output.LastIndexOf('\n');
        return (int.Parse(output[(split + 1)..], CultureInfo.InvariantCulture), output[..split]);
    }
}
