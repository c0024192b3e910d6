using System.Diagnostics;
using System.Globalization;

namespace SharpVisor.Host.Tests;

/// <summary>
/// `sharpvisor jailer ARGS` run by a test, with an exec-file standing in for out/firecracker (a
/// "#!/bin/sh" launcher of this build's `sharpvisor firecracker`, as ./sharpvisor writes it): its
/// standard output (the jailed VMM's console, once it has exec'd) is collected line by line.
/// </summary>
internal sealed class JailerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Task<string> _standardError;

    private JailerProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_lines)
                {
                    _lines.Add(e.Data);
                }
            }
        };
        _process.BeginOutputReadLine();
        _standardError = _process.StandardError.ReadToEndAsync();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Writes DIRECTORY/firecracker: a launcher of this build's VMM, like out/firecracker.</summary>
    public static string WriteLauncher(string directory)
    {
        string dotnet = Path.Combine(Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..")), "dotnet");
        string launcher = Path.Combine(directory, "firecracker");
        File.WriteAllText(launcher, $"#!/bin/sh\nexec \"{dotnet}\" \"{SharpVisorCommand.AssemblyPath}\" firecracker \"$@\"\n");
        File.SetUnixFileMode(launcher, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return launcher;
    }

    /// <summary>
    /// Starts the jailer; with <paramref name="inheritedFile"/>, through a shell that opens that
    /// file as descriptor 7 without close-on-exec, so the jailer inherits it (it must not reach the jailed VMM).
    /// </summary>
    public static JailerProcess Start(IEnumerable<string> arguments, string? inheritedFile = null)
    {
        var start = new ProcessStartInfo(inheritedFile is null ? SharpVisorCommand.Dotnet : "/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (inheritedFile is not null)
        {
            foreach (string argument in new[] { "-c", "exec 7<\"$0\"; exec \"$@\"", inheritedFile, SharpVisorCommand.Dotnet })
            {
                start.ArgumentList.Add(argument);
            }
        }

        start.ArgumentList.Add(SharpVisorCommand.AssemblyPath);
        start.ArgumentList.Add("jailer");
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return new JailerProcess(Process.Start(start)!);
    }

    /// <summary>Runs the jailer to its exit (a refusal, or --daemonize/--new-pid-ns handing over): exit status, stdout, stderr.</summary>
    public static (int ExitCode, string Output, string Error) Run(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(SharpVisorCommand.Dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(SharpVisorCommand.AssemblyPath);
        start.ArgumentList.Add("jailer");
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the jailer exits");
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Waits until a console line contains <paramref name="marker"/>; fails early if the process exits first.</summary>
    public async Task WaitForLineAsync(string marker, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(marker, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline || _process.HasExited)
            {
                string exit = _process.HasExited ? $"exited with status {_process.ExitCode}" : "still runs";
                Assert.Fail($"the jailed VMM never printed {marker} (it {exit}); output:\n{Output}\nstandard error:\n{(_process.HasExited ? await _standardError : "")}");
            }

            await Task.Delay(100);
        }
    }

    public async Task<bool> ExitsWithinAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async Task<string> StandardErrorAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        return await _standardError;
    }

    public override string ToString() => Pid.ToString(CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        await StandardErrorAsync();
        _process.Dispose();
    }
}
