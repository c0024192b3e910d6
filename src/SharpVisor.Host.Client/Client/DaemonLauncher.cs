using System.Diagnostics;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Client;

/// <summary>Starts sharpvisord in the background when the CLI needs it and none is running.</summary>
public static class DaemonLauncher
{
    /// <summary>Returns once a daemon listens on the runtime directory's socket, starting one when needed.</summary>
    public static async Task EnsureRunningAsync(RuntimeDirectory runtime, TimeSpan timeout, CancellationToken cancel = default)
    {
        if (File.Exists(runtime.DaemonSocket) && UnixSocketFiles.IsListening(runtime.DaemonSocket))
        {
            return;
        }

        runtime.EnsureCreated();
        SelfCommand self = SelfCommand.Current;
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("log=\"$1\"; shift; exec setsid \"$@\" </dev/null >>\"$log\" 2>&1");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(runtime.DaemonLog);
        start.ArgumentList.Add(self.FileName);
        foreach (string argument in self.PrefixArguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add("daemon");
        start.Environment[RuntimeDirectory.EnvironmentVariable] = runtime.Root;
        using Process process = Process.Start(start) ?? throw new DaemonException(0, "could not start sharpvisord");

        DateTime deadline = DateTime.UtcNow + timeout;
        while (!(File.Exists(runtime.DaemonSocket) && UnixSocketFiles.IsListening(runtime.DaemonSocket)))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                string why = process.HasExited ? $"it exited with status {process.ExitCode}" : $"it did not listen within {timeout.TotalSeconds:0} s";
                throw new DaemonException(0, $"could not start sharpvisord: {why} (log: {runtime.DaemonLog})");
            }

            await Task.Delay(50, cancel);
        }
    }
}
