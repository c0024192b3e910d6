using System.CommandLine;
using System.Runtime.InteropServices;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor daemon</c>: run sharpvisord, the control daemon, in the foreground (as a service would).</summary>
public static class DaemonCommand
{
    public static Command Create()
    {
        var runtimeDir = new Option<string?>("--runtime-dir") { Description = $"Runtime directory (default: ${RuntimeDirectory.EnvironmentVariable} or {RuntimeDirectory.DefaultPath})" };
        var noCgroups = new Option<bool>("--no-cgroups") { Description = "Do not use cgroups for `sched` (weight and cap)" };
        var migrateListen = new Option<string?>("--migrate-listen") { Description = $"Accept live migrations (sharpvisor migrate) on [ADDR:]PORT, e.g. {SharpVisor.Host.Migration.MigrationEndpoint.DefaultPort}: unauthenticated plain TCP, for a trusted network only" };
        var command = new Command("daemon", "Run sharpvisord, the control daemon, in the foreground (the CLI starts one when none runs).")
        {
            runtimeDir, noCgroups, migrateListen,
        };
        command.SetAction((result, cancel) => RunAsync(result.GetValue(runtimeDir), result.GetValue(noCgroups), result.GetValue(migrateListen), cancel));
        return command;
    }

    private static async Task<int> RunAsync(string? runtimeDir, bool noCgroups, string? migrateListen, CancellationToken cancel)
    {
        RuntimeDirectory runtime = runtimeDir is null ? RuntimeDirectory.FromEnvironment() : new RuntimeDirectory(runtimeDir);
        var stop = new TaskCompletionSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.TrySetResult();
        });
        using var registration = cancel.Register(() => stop.TrySetResult());
        DaemonServer server;
        try
        {
            server = await DaemonServer.StartAsync(new DaemonOptions
            {
                Runtime = runtime,
                Launcher = ProcessVmmLauncher.ForCurrentProcess(),
                CgroupName = noCgroups ? null : runtime.CgroupName,
                MigrationListen = migrateListen,
            });
        }
        catch (Exception e) when (e is ApiException or IOException or UnauthorizedAccessException)
        {
            return Toolstack.Fail($"sharpvisord: {e.Message}");
        }

        await stop.Task;
        Console.Error.WriteLine("sharpvisord: stopping; domains keep running");
        await server.DisposeAsync();
        return ExitCodes.Success;
    }
}
