using System.Diagnostics;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// Issue 10's interactive console: three boots of the default guest under a real pty (tmux), as a
/// user runs `./sharpvisor run` — wait for the shell prompt, type a command and check its answer,
/// leave the shell. None may stall, and SharpVisor writes no progress line over the guest's
/// output. The same script with -n 50 is the soak (outside ./test.sh): scripts/pty-soak.sh.
/// </summary>
public sealed class PtySoakTests
{
    [DefaultGuestFact]
    public void ThreeInteractiveBootsUnderAPtyNeitherStallNorInterleaveProgressLines()
    {
        string root = RepositoryPaths.Root;
        Assert.True(File.Exists("/usr/bin/tmux"), "tmux is missing (scripts/setup.sh installs it)");
        var start = new ProcessStartInfo(Path.Combine(root, "scripts", "pty-soak.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { "-n", "3", "--stall", "150", "--boot-timeout", "300" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["SHARPVISOR_CLI"] = $"dotnet {SharpVisorProcess.AssemblyPath}";
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(16)), "pty-soak.sh did not finish");

        string why = $"exit {process.ExitCode}\n{stdout}\n{stderr.Result}";
        Assert.True(process.ExitCode == 0, why);
        Assert.Contains("pty-soak: 3 boots, 3 ok, 0 stalled, 0 failed", stdout);
    }
}
