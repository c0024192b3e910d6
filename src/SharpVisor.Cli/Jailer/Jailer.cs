using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using SharpVisor.Interop;

namespace SharpVisor.Cli.Jailer;

/// <summary>
/// Builds the jail and starts the exec-file in it, in Firecracker's jailer order: copy the
/// exec-file into &lt;chroot&gt;, join the netns, set the rlimits, create and join the cgroup, enter
/// a new mount namespace and pivot_root into &lt;chroot&gt; (SharpVisor binds its runtime in first:
/// <see cref="JailRuntime"/>), create /dev/net/tun, /dev/kvm, /dev/urandom and /dev/userfaultfd
/// owned by uid:gid, then drop to uid:gid and exec (or, for --daemonize and --new-pid-ns, spawn)
/// "/&lt;exec-file name&gt; --id ID --start-time-us .. --start-time-cpu-us .. --parent-cpu-time-us .. ARGS".
/// Everything runs on the process's main thread: namespaces and the root belong to a thread, and
/// that thread is the one that execs (cgroup v1's tasks file moves that thread too).
/// </summary>
public sealed unsafe class Jailer
{
    private const uint FolderPermissions = 0x1C0; // 0700

    private static readonly string[] s_jailedFolders = ["/", "/dev", "/dev/net", "/run"];

    private readonly JailerOptions _options;
    private readonly long _startTimeUs;
    private readonly long _startCpuUs;

    public Jailer(JailerOptions options, long startTimeUs, long startCpuUs)
    {
        _options = options;
        _startTimeUs = startTimeUs;
        _startCpuUs = startCpuUs;
    }

    /// <summary>CLOCK_MONOTONIC in microseconds (Firecracker's ClockType::Monotonic).</summary>
    public static long MonotonicMicroseconds() => (long)(Stopwatch.GetTimestamp() * (1_000_000.0 / Stopwatch.Frequency));

    /// <summary>This process's CPU time in microseconds (ClockType::ProcessCpu).</summary>
    public static long ProcessCpuMicroseconds() => (long)Environment.CpuUsage.TotalTime.TotalMicroseconds;

    /// <summary>Runs the jail; returns only on failure (thrown) or, when the exec-file was spawned, with 0.</summary>
    public int Run()
    {
        if (LibC.Gettid() != Environment.ProcessId)
        {
            throw new JailerException("Thread", "The jailer must run on the process's main thread");
        }

        CreateDirectory(_options.ChrootDirectory);
        JailRuntime runtime = JailRuntime.ForThisProcess(_options.ExecFilePath);
        string execName = CopyExecFileIntoChroot();
        string jailedExecFile = "/" + execName;

        if (_options.NetNs is { } netns)
        {
            JoinNetworkNamespace(netns);
        }

        SetLimit(LibC.RLIMIT_FSIZE, _options.FileSizeLimit, "size of file");
        SetLimit(LibC.RLIMIT_NOFILE, _options.NoFileLimit, "number of file descriptors");

        _options.Cgroups?.Apply(Environment.ProcessId);

        int devNull = -1;
        if (_options.Daemonize)
        {
            devNull = LibC.Open("/dev/null", LibC.O_RDWR | LibC.O_CLOEXEC);
            if (devNull < 0)
            {
                throw JailerException.Os("Open", "Failed to open /dev/null", Marshal.GetLastPInvokeError());
            }
        }

        bool hostHasKvm = File.Exists("/dev/kvm");
        EnterJail(runtime);

        foreach (string folder in s_jailedFolders)
        {
            SetUpJailedFolder(folder);
        }

        MakeDevice("/dev/net/tun", 10, 200);
        if (hostHasKvm)
        {
            MakeDevice("/dev/kvm", 10, 232);
        }

        try
        {
            MakeDevice("/dev/urandom", 1, 9);
        }
        catch (JailerException e)
        {
            Console.Out.WriteLine($"Warning! Could not create /dev/urandom device inside jailer: {e.Message}.");
            Console.Out.WriteLine("MMDS version 2 will not be available to use.");
        }

        if (_options.UserfaultfdMinor is uint minor)
        {
            MakeDevice("/dev/userfaultfd", 10, minor);
        }

        long jailerCpuUs = ProcessCpuMicroseconds() - _startCpuUs;
        if (_options.Daemonize || _options.NewPidNs)
        {
            return Spawn(jailedExecFile, runtime, jailerCpuUs, devNull);
        }

        WritePidFile(jailedExecFile, Environment.ProcessId);
        DropPrivileges();
        IReadOnlyList<string> argv = Arguments(jailedExecFile, jailerCpuUs);
        PrepareExec();
        int errno = ProcessImage.Execute(jailedExecFile, argv, runtime.Environment);
        throw JailerException.Os("Exec", "Failed to exec into Firecracker", errno);
    }

    /// <summary>
    /// --daemonize and --new-pid-ns: the child runs the exec-file (in a new session for
    /// --daemonize, with stdio on /dev/null; as pid 1 of a new pid namespace for --new-pid-ns);
    /// the jailer writes its pid to /&lt;exec-file name&gt;.pid and exits. posix_spawn, not fork: a
    /// .NET process must not run managed code in a forked child.
    /// </summary>
    private int Spawn(string jailedExecFile, JailRuntime runtime, long jailerCpuUs, int devNull)
    {
        bool newSession = _options.Daemonize;
        if (_options.NewPidNs)
        {
            // As Firecracker: a session leader's child gets its own session, so the jailer's exit sends it no SIGHUP.
            newSession |= LibC.Getsid(0) == Environment.ProcessId;
            if (LibC.Unshare(LibC.CLONE_NEWPID) < 0)
            {
                throw JailerException.Os("Clone", "Failed cloning into a new child process", Marshal.GetLastPInvokeError());
            }
        }

        DropPrivileges();
        IReadOnlyList<string> argv = Arguments(jailedExecFile, jailerCpuUs);
        PrepareExec();
        int result = ProcessImage.Spawn(jailedExecFile, argv, runtime.Environment, newSession, devNull, out int pid);
        if (result != 0)
        {
            throw JailerException.Os("Exec", "Failed to exec into Firecracker", result);
        }

        WritePidFile(jailedExecFile, pid);
        return 0;
    }

    private List<string> Arguments(string jailedExecFile, long jailerCpuUs)
    {
        List<string> argv =
        [
            jailedExecFile,
            "--id", _options.Id,
            "--start-time-us", _startTimeUs.ToString(CultureInfo.InvariantCulture),
            "--start-time-cpu-us", ProcessCpuMicroseconds().ToString(CultureInfo.InvariantCulture),
            "--parent-cpu-time-us", jailerCpuUs.ToString(CultureInfo.InvariantCulture),
        ];
        argv.AddRange(_options.ExtraArguments);
        return argv;
    }

    /// <summary>
    /// No descriptor but stdio reaches the exec-file (inherited ones included: they were marked
    /// close-on-exec at start, as Firecracker closes them), the signal mask is empty, SIGPIPE is
    /// back to its default, and no exec can gain privileges again.
    /// </summary>
    private static void PrepareExec()
    {
        LibC.CloseRange(3, uint.MaxValue, LibC.CLOSE_RANGE_CLOEXEC);
        if (LibC.Prctl(LibC.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        {
            throw JailerException.Os("NoNewPrivs", "Failed to set no_new_privs", Marshal.GetLastPInvokeError());
        }

        ProcessImage.ResetSignalsForExec();
    }

    /// <summary>
    /// setgroups([]), setgid, setuid — on every thread (glibc) — then checks the result: real,
    /// effective and saved ids are the ones given, no supplementary group is left, and (for a
    /// uid other than 0) setuid(0) and setgid(0) fail.
    /// </summary>
    private void DropPrivileges()
    {
        uint uid = _options.Uid;
        uint gid = _options.Gid;
        if (LibC.Setgroups(0, null) < 0 || LibC.Setgid(gid) < 0 || LibC.Setuid(uid) < 0)
        {
            throw JailerException.Os("Credentials", $"Failed to switch to uid {uid} gid {gid}", Marshal.GetLastPInvokeError());
        }

        uint ruid, euid, suid, rgid, egid, sgid;
        LibC.Getresuid(&ruid, &euid, &suid);
        LibC.Getresgid(&rgid, &egid, &sgid);
        int groups = LibC.Getgroups(0, null);
        bool regained = uid != 0 && (LibC.Setuid(0) == 0 || LibC.Setgid(0) == 0);
        if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid || (groups != 0 && !(groups == 1 && gid == 0)) || regained)
        {
            throw new JailerException(
                "Credentials",
                $"Failed to drop privileges: uids {ruid}/{euid}/{suid}, gids {rgid}/{egid}/{sgid}, {groups} supplementary groups, root regained: {regained}");
        }
    }

    /// <summary>
    /// chroot.rs: a new mount namespace with every mount a slave of the host's, &lt;chroot&gt; bound
    /// onto itself (SharpVisor's runtime bound into it), pivot_root into it, the old root detached
    /// and removed. Then a /proc for the .NET runtime (/proc/self/exe, maps) and the VMM
    /// (/proc/cpuinfo: is /dev/kvm PVM?), where other users' processes are invisible.
    /// </summary>
    private void EnterJail(JailRuntime runtime)
    {
        string root = _options.ChrootDirectory;
        Check(LibC.Unshare(LibC.CLONE_NEWNS), "UnshareNewNs", "Failed to unshare into new mount namespace");
        Check(LibC.Mount(null, "/", null, LibC.MS_SLAVE | LibC.MS_REC, null), "MountPropagationSlave", "Failed to change the propagation type to slave");
        Check(LibC.Mount(root, root, null, LibC.MS_BIND | LibC.MS_REC, null), "MountBind", "Failed to bind mount the jail root directory");
        runtime.MountInto(root);
        Check(LibC.Chdir(root), "SetCurrentDir", "Failed to change current directory");
        Check(LibC.Mkdir("old_root", LibC.S_IRUSR | LibC.S_IWUSR), "MkdirOldRoot", "Failed to create the jail root directory before pivoting root");
        Check(LibC.PivotRoot(".", "old_root"), "PivotRoot", "Failed to pivot root");
        Check(LibC.Chdir("/"), "ChdirNewRoot", "Failed to chdir into chroot directory");
        Check(LibC.Umount2("old_root", LibC.MNT_DETACH), "UmountOldRoot", "Failed to unmount the old jail root");
        Check(LibC.Rmdir("old_root"), "RmOldRootDir", "Failed to remove old jail root directory");
        if (!Directory.Exists("/proc"))
        {
            Check(LibC.Mkdir("/proc", 0x16D), "CreateDir", "Failed to create directory /proc"); // 0555
        }

        Check(LibC.Mount("proc", "/proc", "proc", LibC.MS_NOSUID | LibC.MS_NODEV | LibC.MS_NOEXEC, "hidepid=invisible"), "MountProc", "Failed to mount /proc in the jail");
    }

    private string CopyExecFileIntoChroot()
    {
        string name = _options.ExecFileName;
        string destination = Path.Combine(_options.ChrootDirectory, name);
        int source = LibC.Open(_options.ExecFilePath, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (source < 0)
        {
            throw JailerException.Os("Open", $"Failed to open {_options.ExecFilePath}", Marshal.GetLastPInvokeError());
        }

        using var sourceHandle = new SafeFileHandle(source, ownsHandle: true);
        FileStat sourceStat;
        LibC.Fstat(source, &sourceStat);
        int target = LibC.OpenWithMode(destination, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, sourceStat.Mode & 0xFFF);
        if (target < 0)
        {
            throw JailerException.Os("Open", $"Failed to open {destination}", Marshal.GetLastPInvokeError());
        }

        using var targetHandle = new SafeFileHandle(target, ownsHandle: true);
        FileStat targetStat;
        LibC.Fstat(target, &targetStat);
        if (targetStat.LinkCount > 1)
        {
            throw new JailerException("HardLink(..)", $"Detected hard link at: {destination}");
        }

        if (LibC.Fchown(target, _options.Uid, _options.Gid) < 0)
        {
            throw JailerException.Os("ChangeFileOwner", $"Failed to change owner for {destination}", Marshal.GetLastPInvokeError());
        }

        using (var input = new FileStream(sourceHandle, FileAccess.Read))
        using (var output = new FileStream(targetHandle, FileAccess.Write))
        {
            output.SetLength(0);
            input.CopyTo(output);
        }

        return name;
    }

    private static void JoinNetworkNamespace(string path)
    {
        int fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw JailerException.Os("FileOpen", $"Failed to open file {path}", Marshal.GetLastPInvokeError());
        }

        try
        {
            Check(LibC.Setns(fd, LibC.CLONE_NEWNET), "SetNetNs", "Failed to join network namespace: netns");
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    private static void SetLimit(int resource, ulong? value, string name)
    {
        if (value is not ulong limit)
        {
            return;
        }

        ulong* rlimit = stackalloc ulong[2];
        rlimit[0] = limit;
        rlimit[1] = limit;
        if (LibC.Setrlimit(resource, rlimit) < 0)
        {
            throw new JailerException($"Setrlimit(\"{name}\")", $"Failed to set limit for resource: {name}");
        }
    }

    private void SetUpJailedFolder(string folder)
    {
        CreateDirectory(folder);
        if (LibC.Chmod(folder, FolderPermissions) < 0)
        {
            throw JailerException.Os("Chmod", $"Failed to change permissions on {folder}", Marshal.GetLastPInvokeError());
        }

        if (LibC.Chown(folder, _options.Uid, _options.Gid) < 0)
        {
            throw JailerException.Os("ChangeFileOwner", $"Failed to change owner for {folder}", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>mknod S_IFCHR|0600, owned by uid:gid, as Firecracker's mknod_and_own_dev.</summary>
    private void MakeDevice(string path, uint major, uint minor)
    {
        if (LibC.Mknod(path, LibC.S_IFCHR | LibC.S_IRUSR | LibC.S_IWUSR, LibC.MakeDevice(major, minor)) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new JailerException($"MknodDev(Os {{ code: {errno} }}, \"{path}\")", $"Failed to create {path} via mknod inside the jail: {JailerException.OsError(errno)}");
        }

        if (LibC.Chown(path, _options.Uid, _options.Gid) < 0)
        {
            throw JailerException.Os("ChangeFileOwner", $"Failed to change owner for {path}", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>&lt;exec-file name&gt;.pid in the jail's root, created new.</summary>
    private static void WritePidFile(string jailedExecFile, int pid)
    {
        string path = jailedExecFile + ".pid";
        try
        {
            using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            file.Write(System.Text.Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JailerException("FileOpen(..)", $"Failed to open file {path}: {JailerException.IoError(e)}");
        }
    }

    private static void CreateDirectory(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JailerException("CreateDir(..)", $"Failed to create directory {path}: {JailerException.IoError(e)}");
        }
    }

    private static void Check(int result, string variant, string message)
    {
        if (result < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new JailerException($"{variant}(Os {{ code: {errno} }})", $"{message}: {JailerException.OsError(errno)}");
        }
    }
}
