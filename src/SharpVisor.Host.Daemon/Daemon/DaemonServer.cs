using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using SharpVisor.Host.Http;
using SharpVisor.Host.Scheduling;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// sharpvisord: the control daemon (Dom0's toolstack). Serves <see cref="DaemonApi"/> on a
/// Unix socket in the runtime directory, finds the domains an earlier daemon left running,
/// and supervises every domain's VMM process. Stopping the daemon leaves domains running.
/// </summary>
public sealed class DaemonServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly RuntimeDirectory _runtime;
    private Migration.MigrationListener? _migrationListener;

    private DaemonServer(WebApplication app, DomainRegistry registry, RuntimeDirectory runtime)
    {
        _app = app;
        Registry = registry;
        _runtime = runtime;
    }

    public DomainRegistry Registry { get; }

    public string SocketPath => _runtime.DaemonSocket;

    /// <summary>Where this daemon accepts live migrations; null without --migrate-listen.</summary>
    public System.Net.IPEndPoint? MigrationEndpoint => _migrationListener?.Endpoint;

    public static async Task<DaemonServer> StartAsync(DaemonOptions options, CancellationToken cancel = default)
    {
        RuntimeDirectory runtime = options.Runtime;
        runtime.EnsureCreated();
        UnixSocketFiles.PrepareForListening(runtime.DaemonSocket);

        CgroupCpuController? cgroups = null;
        string? cgroupReason = "CPU scheduling is disabled for this daemon";
        if (options.CgroupName is { } group)
        {
            cgroups = CgroupCpuController.TryCreate(group, out cgroupReason);
        }

        var environment = new DomainEnvironment
        {
            Runtime = runtime,
            Launcher = options.Launcher,
            Cgroups = cgroups,
            CgroupUnavailableReason = cgroupReason,
            VmmStartTimeout = options.VmmStartTimeout,
            Log = options.Log ?? (message => System.Console.Error.WriteLine($"sharpvisord: {message}")),
        };
        var registry = new DomainRegistry(environment);
        await registry.RestoreAsync();

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = DaemonApi.MaxCreateBodyBytes * 2;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.ListenUnixSocket(runtime.DaemonSocket);
        });
        WebApplication app = builder.Build();
        ApiResults.UseFaultBodies(app);
        app.UseWebSockets();
        DaemonApi.Map(app, registry);
        await app.StartAsync(cancel);
        UnixSocketFiles.RestrictToOwner(runtime.DaemonSocket);
        File.WriteAllText(runtime.DaemonPidFile, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        environment.Log($"listening on {runtime.DaemonSocket}; {registry.List().Count} domain(s) found; scheduling: {(cgroups is null ? cgroupReason : $"cgroup {cgroups.Version} at {cgroups.Parent}")}");
        var server = new DaemonServer(app, registry, runtime);
        if (options.MigrationListen is { } listen)
        {
            try
            {
                server._migrationListener = Migration.MigrationListener.Start(registry, listen);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or ArgumentException)
            {
                await server.DisposeAsync();
                throw new IOException($"cannot listen for migrations on {listen}: {e.Message}", e);
            }

            environment.Log($"accepting live migrations on {server._migrationListener.Endpoint} (unauthenticated plain TCP: a trusted network only)");
        }

        return server;
    }

    public async ValueTask DisposeAsync()
    {
        _migrationListener?.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Registry.DetachAllAsync();
        File.Delete(_runtime.DaemonSocket);
        File.Delete(_runtime.DaemonPidFile);
    }
}
