using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// What the toolstack commands share: find (or start) sharpvisord, talk to it, and turn any
/// refusal into one error line on stderr with exit status 125.
/// </summary>
public static class Toolstack
{
    private static readonly TimeSpan s_daemonStartTimeout = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(Func<DaemonClient, Task<int>> body, CancellationToken cancel)
    {
        try
        {
            RuntimeDirectory runtime = RuntimeDirectory.FromEnvironment();
            await DaemonLauncher.EnsureRunningAsync(runtime, s_daemonStartTimeout, cancel);
            using var client = new DaemonClient(runtime.DaemonSocket);
            return await body(client);
        }
        catch (Exception e) when (e is DaemonException or CliException or ApiException or IOException or UnauthorizedAccessException)
        {
            return Fail(e.Message);
        }
    }

    public static int Fail(string message)
    {
        Console.Error.WriteLine($"sharpvisor: error: {message}");
        return ExitCodes.Error;
    }

    /// <summary>0:04:05 style uptime.</summary>
    public static string FormatUptime(double? seconds)
    {
        if (seconds is not double s)
        {
            return "-";
        }

        var span = TimeSpan.FromSeconds(s);
        return span.TotalDays >= 1 ? $"{(int)span.TotalDays}d{span:hh\\:mm\\:ss}" : span.ToString(@"h\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture);
    }
}
