using System.Diagnostics;
using System.Text;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// One `sharpvisor run` of the default guest with a /hook.sh appended as an extra initramfs
/// (and any files the hook needs), optionally inside a network namespace. Serial output is
/// collected line by line so a test can react to what the guest prints, or kill the VMM.
/// </summary>
public sealed class GuestRun : IDisposable
{
    /// <summary>How long a boot plus a hook may take: generous, the emulator boots Linux in software.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    private readonly Process _process;
    private readonly List<string> _lines = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _stdout;
    private readonly Task _stderrTask;

    private GuestRun(Process process)
    {
        _process = process;
        _stdout = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (_lines)
                {
                    _lines.Add(line.TrimEnd('\r'));
                    Monitor.PulseAll(_lines);
                }
            }
        });
        _stderrTask = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(line);
                }
            }
        });
    }

    public int Pid => _process.Id;

    public string[] Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToArray();
            }
        }
    }

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>
    /// Boots the default guest with <paramref name="hook"/> as /hook.sh (plus <paramref name="files"/>)
    /// and `autopoweroff`, with the extra <paramref name="arguments"/> (devices, memory), on
    /// <paramref name="commandLine"/> (default: the default guest's).
    /// </summary>
    /// <param name="extraCommandLine">Appended to the guest's kernel command line (e.g. pci=nomsi).</param>
    public static GuestRun Start(string directory, string hook, IReadOnlyDictionary<string, byte[]>? files = null, string[]? arguments = null, NetworkNamespace? ns = null, string? commandLine = null, string? extraCommandLine = null)
    {
        var archive = new CpioArchive().AddFile("hook.sh", hook);
        foreach ((string name, byte[] contents) in files ?? new Dictionary<string, byte[]>())
        {
            archive.AddFile(name, contents, mode: 0x1A4);
        }

        string cpio = Path.Combine(directory, $"hook-{Guid.NewGuid():N}.cpio");
        archive.WriteTo(cpio);

        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            FileName = ns is null ? "dotnet" : "ip",
        };
        string[] prefix = ns is null ? [] : ["netns", "exec", ns.Name, "dotnet"];
        string[] run =
        [
            SharpVisorProcess.AssemblyPath, "run",
            "--kernel", GuestBootCapability.Kernel, "--initrd", GuestBootCapability.Initrd, "--extra-initrd", cpio,
            "--cmdline", $"{commandLine ?? DefaultGuest.CommandLine} autopoweroff {extraCommandLine}".TrimEnd(),
            "--timeout", ((int)Timeout.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
        ];
        foreach (string a in prefix.Concat(run).Concat(arguments ?? []))
        {
            start.ArgumentList.Add(a);
        }

        Process process = Process.Start(start)!;
        process.StandardInput.Close();
        return new GuestRun(process);
    }

    /// <summary>Waits until the guest printed a line starting with <paramref name="prefix"/> and returns it.</summary>
    public string WaitForLine(string prefix, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? Timeout);
        lock (_lines)
        {
            while (true)
            {
                string? line = _lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
                if (line is not null)
                {
                    return line;
                }

                TimeSpan left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || (_process.HasExited && _stdout.IsCompleted))
                {
                    throw new Xunit.Sdk.XunitException($"the guest never printed '{prefix}'.\nstdout tail:\n{string.Join('\n', _lines.TakeLast(40))}\nstderr:\n{StandardError}");
                }

                Monitor.Wait(_lines, left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>Waits for the VMM to exit and returns its status.</summary>
    public int WaitForExit()
    {
        if (!_process.WaitForExit(Timeout + TimeSpan.FromMinutes(1)))
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException("sharpvisor run did not end");
        }

        _process.WaitForExit();
        Task.WaitAll(_stdout, _stderrTask);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, as a crash of the VMM process would be.</summary>
    public void KillHard()
    {
        // Inside a namespace the VMM is a child of `ip netns exec`... which execs it: same pid.
        Process.GetProcessById(_process.Id).Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
