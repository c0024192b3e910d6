using System.Net.Sockets;
using System.Runtime.InteropServices;
using SharpVisor.Host.Console;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// One per-domain VMM process's servers: the Firecracker API on a Unix socket (<see cref="UnixSocketHttpServer"/>, no ASP.NET Core: a VMM must be ready in milliseconds), the
/// serial console socket and the state file. <see cref="RunAsync"/> returns the exit status
/// once the machine has stopped (or the process was asked to terminate).
/// </summary>
public sealed class VmmServer : IAsyncDisposable
{
    /// <summary>Limit for config files (the API's bodies have Firecracker's 51200-byte limit).</summary>
    public const int MaxConfigFileBytes = 1 << 20;

    private readonly VmmServerOptions _options;
    private readonly ConsoleBroadcaster _console;
    private readonly UnixSocketHttpServer? _api;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _serialPump;
    private Task? _metricsTimer;
    private readonly ConsoleSocketServer _consoleServer;
    private readonly object _stateFileLock = new();

    private VmmServer(VmmServerOptions options, VmmController controller, ConsoleBroadcaster console, UnixSocketHttpServer? api, ConsoleSocketServer consoleServer)
    {
        _options = options;
        Controller = controller;
        _console = console;
        _api = api;
        _consoleServer = consoleServer;
    }

    public VmmController Controller { get; }

    /// <summary>
    /// Starts listening. With a config file the machine is configured and started before this
    /// returns; a bad file throws <see cref="ApiException"/> and nothing keeps running.
    /// </summary>
    public static async Task<VmmServer> StartAsync(VmmServerOptions options, IDomainMachineFactory factory, CancellationToken cancel = default)
    {
        FullVmConfiguration? config = options.ConfigFile is null ? null : ReadConfigFile(options.ConfigFile);
        var console = new ConsoleBroadcaster();
        var controller = new VmmController(options.Identity, factory, console);
        StartupTrace.Mark("controller created");
        try
        {
            // The command line's logger and metrics first, then the config file's (as Firecracker).
            if (options.Logger is not null)
            {
                controller.Log.Configure(options.Logger);
            }

            if (options.Metrics is not null)
            {
                controller.Metrics.Configure(options.Metrics);
            }

            if (config?.Logger is not null)
            {
                controller.Log.Configure(config.Logger);
            }

            if (config?.Metrics is not null)
            {
                controller.Metrics.Configure(config.Metrics);
            }

            if (config is not null)
            {
                controller.LoadConfiguration(config);
            }
        }
        catch
        {
            controller.Dispose();
            throw;
        }

        if (!options.ServeApi && config is null)
        {
            throw ApiException.BadRequest("--no-api needs --config-file: without the API nothing could configure the microVM");
        }

        if (options.Inherited is { } inherited)
        {
            return await AdoptAsync(options, controller, console, inherited);
        }

        if (options.ServeApi)
        {
            UnixSocketFiles.PrepareForListening(options.ApiSocketPath);
        }

        UnixSocketFiles.PrepareForListening(options.EffectiveConsoleSocketPath);

        // The console listens before the API does: a client that sees the API can attach at once.
        var consoleServer = new ConsoleSocketServer(options.EffectiveConsoleSocketPath, console);
        if (!options.ServeApi)
        {
            var headless = new VmmServer(options, controller, console, null, consoleServer);
            await headless.StartAsync(config!);
            return headless;
        }

        StartupTrace.Mark("console socket listening");
        var router = new ApiRouter();
        VmmApi.Map(router, controller);

        // As in Firecracker, whose API answers only once the config file's microVM is built: a request
        // that arrives meanwhile waits, so a client never sees the machine before its start.
        var configApplied = new ManualResetEventSlim(config is null);
        UnixSocketHttpServer api;
        try
        {
            api = UnixSocketHttpServer.Start(options.ApiSocketPath, request =>
            {
                configApplied.Wait();
                return Serve(controller, router, request, options.Observer, logReceived: true);
            });
        }
        catch
        {
            await consoleServer.DisposeAsync();
            throw;
        }

        StartupTrace.Mark("api socket listening");
        UnixSocketFiles.RestrictToOwner(options.ApiSocketPath);
        controller.Metrics.MarkApiReady();
        options.Observer?.Listening(api, consoleServer, controller);
        controller.Log.Info("vmm", $"SharpVisor {VmmVersion.Current} serving the Firecracker API on {options.ApiSocketPath}");
        var server = new VmmServer(options, controller, console, api, consoleServer);
        try
        {
            await server.StartAsync(config);
        }
        finally
        {
            configApplied.Set();
        }

        return server;
    }

    /// <summary>
    /// The JIT VMM after a handover: serves on the front end's sockets, replays the configuration
    /// requests it accepted (through the same routes), then answers the pending request (InstanceStart
    /// or a snapshot load) on its connection. A replay that fails fails that request, with the reason.
    /// </summary>
    private static async Task<VmmServer> AdoptAsync(VmmServerOptions options, VmmController controller, ConsoleBroadcaster console, VmmHandoverState inherited)
    {
        var consoleServer = new ConsoleSocketServer(new Socket(new SafeSocketHandle(inherited.ConsoleSocketFd, ownsHandle: true)), options.EffectiveConsoleSocketPath, console);
        var router = new ApiRouter();
        VmmApi.Map(router, controller);
        controller.Metrics.Inherit(inherited.StartupMicroseconds, inherited.StartupCpuMicroseconds, inherited.RequestCounts);
        string? failure = null;
        foreach (VmmHandoverRequest replay in inherited.Requests)
        {
            ApiResponse answer = router.Dispatch(replay.ToApiRequest());
            if (answer.StatusCode >= 300)
            {
                failure = $"cannot start the microVM: the handover to the JIT VMM failed: replaying {replay.Method} {replay.Path} answered {answer.StatusCode}: {System.Text.Encoding.UTF8.GetString(answer.Body)}";
                controller.Log.Error("vmm::handover", failure);
                break;
            }
        }

        UnixSocketHttpServer api = UnixSocketHttpServer.Adopt(
            new Socket(new SafeSocketHandle(inherited.ApiSocketFd, ownsHandle: true)),
            request => Serve(controller, router, request, options.Observer, logReceived: true));
        var server = new VmmServer(options, controller, console, api, consoleServer);
        await server.StartAsync(null);
        var connection = new Socket(new SafeSocketHandle(inherited.ConnectionFd, ownsHandle: true));
        api.ServeInherited(connection, inherited.Buffered, request =>
        {
            // The front end logged this request when it arrived; it is counted here, once answered.
            if (failure is null)
            {
                return Serve(controller, router, request, options.Observer, logReceived: false);
            }

            controller.Metrics.CountRequest(request.Method, VmmApi.MetricName(request.Path), failed: true);
            return ApiResponse.Fault(400, failure);
        });
        controller.Log.Info("vmm", $"SharpVisor {VmmVersion.Current} took over the Firecracker API on {options.ApiSocketPath} from the front end");
        return server;
    }

    /// <summary>
    /// A VMM process's life: starts the server, waits for the machine to stop (or SIGTERM), and
    /// returns the exit status; a refusal to start is one line on standard error.
    /// </summary>
    public static async Task<int> RunProcessAsync(VmmServerOptions options, IDomainMachineFactory factory, CancellationToken cancel)
    {
        using var terminate = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            terminate.Cancel();
        });
        VmmServer server;
        try
        {
            server = await StartAsync(options, factory, cancel);
        }
        catch (Exception e) when (e is ApiException or IOException or UnauthorizedAccessException)
        {
            return FirecrackerCommandLine.Fail(e.Message);
        }

        await using (server)
        {
            int status = await server.RunAsync(terminate.Token);
            if (server.Controller.Status().Stop is { } stop)
            {
                System.Console.Error.WriteLine($"[sharpvisor] domain {options.Identity.InstanceId}: {stop.Detail} (exit status {stop.ExitStatus})");
            }

            return status;
        }
    }

    private async Task StartAsync(FullVmConfiguration? config)
    {
        Controller.StatusChanged += WriteStateFile;
        WriteStateFile(Controller.Status());
        _metricsTimer = FlushMetricsPeriodicallyAsync(_stopping.Token);
        if (_options.SerialToStandardOutput)
        {
            _serialPump = PumpSerialToStandardOutputAsync(_console.Subscribe(), Controller);
        }

        if (config is not null)
        {
            try
            {
                Controller.Start();
            }
            catch
            {
                await DisposeAsync();
                throw;
            }
        }
    }

    /// <summary>Like Firecracker, metrics are also flushed every <see cref="MetricsFlushInterval"/>.</summary>
    private async Task FlushMetricsPeriodicallyAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(_options.MetricsFlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    Controller.TryFlushMetrics();
                }
                catch (ApiException e)
                {
                    Controller.Log.Error("vmm::metrics", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The VMM is shutting down.
        }
    }

    private static async Task PumpSerialToStandardOutputAsync(ConsoleSubscription subscription, VmmController controller)
    {
        using (subscription)
        {
            using Stream stdout = System.Console.OpenStandardOutput();
            try
            {
                stdout.Write(subscription.History);
                await foreach (byte[] chunk in subscription.Live.ReadAllAsync())
                {
                    if (controller.SerialGoesToFile)
                    {
                        // PUT /serial chose a file (SerialOutputFile): as in Firecracker, not standard output too.
                        continue;
                    }

                    stdout.Write(chunk);
                    stdout.Flush();
                }
            }
            catch (IOException)
            {
                // Nobody reads standard output any more; the console socket still serves the console.
            }
        }
    }

    /// <summary>Waits for the machine to stop, or for <paramref name="terminate"/> (which powers it off); returns the exit status.</summary>
    public async Task<int> RunAsync(CancellationToken terminate)
    {
        var terminated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using CancellationTokenRegistration registration = terminate.Register(() => terminated.TrySetResult());
        await Task.WhenAny(Controller.Stopped, terminated.Task);
        if (!Controller.Stopped.IsCompleted)
        {
            if (Controller.State == VmmState.NotStarted)
            {
                return 0;
            }

            try
            {
                Controller.PowerOff("the VMM process was asked to terminate");
            }
            catch (ApiException)
            {
                // It stopped in the meantime.
            }
        }

        DomainStopInfo stop = await Controller.Stopped;
        _console.Complete();
        await _consoleServer.DrainAsync(TimeSpan.FromSeconds(2));
        if (_serialPump is not null)
        {
            await Task.WhenAny(_serialPump, Task.Delay(TimeSpan.FromSeconds(2)));
        }

        return stop.ExitStatus;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_metricsTimer is not null)
        {
            await _metricsTimer;
        }

        Controller.StatusChanged -= WriteStateFile;
        _console.Complete();
        await _consoleServer.DisposeAsync();
        if (_api is not null)
        {
            await _api.DisposeAsync();
            File.Delete(_options.ApiSocketPath);
        }

        Controller.Dispose();
        _stopping.Dispose();
    }

    private static FullVmConfiguration ReadConfigFile(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw ApiException.BadRequest($"config file '{path}' does not exist");
            }

            if (info.Length > MaxConfigFileBytes)
            {
                throw ApiException.BadRequest($"config file '{path}' is larger than {MaxConfigFileBytes} bytes");
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw ApiException.BadRequest($"config file '{path}' cannot be read: {e.Message}");
        }

        return JsonBody.Parse(bytes, FirecrackerJsonContext.Default.FullVmConfiguration);
    }

    /// <summary>
    /// Firecracker's API log lines and request metrics, for its own paths only. Refusals go to a
    /// configured log only: standard error (the daemon's vmm.log) stays as it was.
    /// </summary>
    private static ApiResponse Serve(VmmController controller, ApiRouter router, ApiRequest request, IApiRequestObserver? observer, bool logReceived)
    {
        bool firecrackerPath = !request.Path.StartsWith("/sharpvisor/", StringComparison.Ordinal);
        if (firecrackerPath && logReceived)
        {
            controller.Log.Info("api_server::request", $"The API server received a {request.Method} request on \"{request.Path}\".");
        }

        observer?.Dispatching(request);
        ApiResponse response = router.Dispatch(request);
        observer?.Served(request, response);
        StartupTrace.FirstAnswer();
        if (firecrackerPath)
        {
            bool failed = response.StatusCode >= 400;
            controller.Metrics.CountRequest(request.Method, VmmApi.MetricName(request.Path), failed);
            if (failed && controller.Log.IsConfigured)
            {
                controller.Log.Error("api_server::request", $"{request.Method} {request.Path} answered {response.StatusCode}");
            }
        }

        return response;
    }

    private void WriteStateFile(VmmStatus status)
    {
        if (_options.StateFilePath is not { } path)
        {
            return;
        }

        lock (_stateFileLock)
        {
            VmmStateFile.Write(path, status);
        }
    }
}
