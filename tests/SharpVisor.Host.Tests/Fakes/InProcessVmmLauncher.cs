using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Tests.Fakes;

/// <summary>
/// Runs each "VMM" as a real <see cref="VmmServer"/> (API server, console socket, state file)
/// inside the test process over fake machines, so the daemon's supervision logic is tested
/// fast and without KVM. <see cref="VmmHandle.Kill"/> tears the server down without a final
/// state, as SIGKILL would.
/// </summary>
public sealed class InProcessVmmLauncher : IVmmLauncher
{
    private readonly Dictionary<string, Handle> _running = new();

    public FakeDomainMachineFactory Factory { get; } = new();

    public int Launches { get; private set; }

    public VmmHandle Launch(DomainPaths paths, VmmIdentity identity)
    {
        var options = new VmmServerOptions
        {
            ApiSocketPath = paths.ApiSocket,
            ConsoleSocketPath = paths.ConsoleSocket,
            StateFilePath = paths.VmmStateFile,
            Identity = identity,
        };
        var handle = new Handle(options, Factory);
        lock (_running)
        {
            _running[paths.ApiSocket] = handle;
            Launches++;
        }

        return handle;
    }

    public VmmHandle? Adopt(DomainPaths paths, int pid, long? startTicks)
    {
        lock (_running)
        {
            return _running.TryGetValue(paths.ApiSocket, out Handle? handle) && !handle.Exited.IsCompleted ? handle : null;
        }
    }

    /// <summary>Stops every server still running (test cleanup).</summary>
    public void KillAll()
    {
        lock (_running)
        {
            foreach (Handle handle in _running.Values)
            {
                handle.Kill();
            }
        }
    }

    private sealed class Handle : VmmHandle
    {
        private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _kill = new();

        public Handle(VmmServerOptions options, FakeDomainMachineFactory factory)
        {
            _ = RunAsync(options, factory);
        }

        public override int Pid => Environment.ProcessId;

        public override long? StartTicks => null;

        public override Task Exited => _exited.Task;

        public override void Kill() => _kill.Cancel();

        private async Task RunAsync(VmmServerOptions options, FakeDomainMachineFactory factory)
        {
            try
            {
                await using VmmServer server = await VmmServer.StartAsync(options, factory);

                // The domain's own directory, not the host's runtime directory, holds the test's attestation key.
                server.Controller.AttestationKeyDirectory = Path.Combine(Path.GetDirectoryName(options.ApiSocketPath)!, "attestation");
                Task<SharpVisor.Host.Domains.DomainStopInfo> stopped = server.Controller.Stopped;
                await Task.WhenAny(stopped, Task.Delay(Timeout.Infinite, _kill.Token));
                if (stopped.IsCompleted)
                {
                    await server.RunAsync(CancellationToken.None);
                }
                else
                {
                    // Killed: the server goes away without writing a final state, as after SIGKILL.
                }
            }
            catch (Exception)
            {
            }
            finally
            {
                _exited.TrySetResult();
            }
        }
    }
}
