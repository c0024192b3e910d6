using System.Net.Sockets;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;
using SharpVisor.Host.Migration;

namespace SharpVisor.Host.Firecracker;

/// <summary>Live migration through the VMM (docs/migration.md): sending this machine away, or receiving one instead of InstanceStart.</summary>
public sealed partial class VmmController
{
    private int _migrating;

    /// <summary>
    /// Migrates the running machine to <paramref name="destination"/> (a connected stream to the
    /// destination's listener). On success the machine is stopped ("migrated") and the VMM ends as
    /// after a power-off; on failure it runs on and <see cref="MigrationException"/> says why.
    /// </summary>
    public MigrationResult MigrateOut(Stream destination, string where, MigrationOptions options, Action<string> progress)
    {
        IDomainMachine machine;
        lock (_lock)
        {
            if (_state != VmmState.Running)
            {
                throw ApiException.BadRequest($"the microVM is {Describe(_state)}; only a running microVM migrates");
            }

            machine = _machine!;
        }

        if (Interlocked.Exchange(ref _migrating, 1) != 0)
        {
            throw ApiException.Conflict("a migration of this microVM is already under way");
        }

        try
        {
            MigrationResult result = machine.MigrateTo(destination, options, progress);
            Log.Info("vmm::migration", $"migrated to {where}: {result.Rounds} rounds, {result.PagesSent} pages, {result.Total.TotalMilliseconds:0} ms, downtime {result.Downtime.TotalMilliseconds:0} ms");
            machine.Stop($"migrated to {where}");
            machine.Resume(); // the parked vCPU threads see the stop and end; the guest never runs here again
            return result;
        }
        catch (MigrationException e)
        {
            Log.Error("vmm::migration", $"migration to {where} failed, the microVM runs on: {e.Message}");
            throw;
        }
        finally
        {
            Volatile.Write(ref _migrating, 0);
        }
    }

    /// <summary>Instead of InstanceStart: the machine comes over <paramref name="source"/> and runs once the source committed.</summary>
    public void ReceiveMigration(Stream source)
    {
        lock (_lock)
        {
            RequireNotStarted();
            if (Interlocked.Exchange(ref _migrating, 1) != 0)
            {
                throw ApiException.Conflict("a migration into this VMM is already under way");
            }
        }

        IDomainMachine machine;
        try
        {
            machine = _factory.ReceiveMigration(source, _console.OutputSink, line => Log.Warning("vmm::devices", line));
        }
        catch (Exception e) when (e is MigrationException or IOException or SocketException or NotSupportedException)
        {
            Volatile.Write(ref _migrating, 0);
            Log.Error("vmm::migration", $"incoming migration failed: {e.Message}");
            throw new MigrationException(e.Message, e);
        }

        var started = System.Diagnostics.Stopwatch.StartNew(); // from the source's commit to running vCPUs
        lock (_lock)
        {
            machine.Stopped += OnMachineStopped;
            _console.Input = machine.WriteConsoleInput;
            machine.Start();
            _machine = machine;
            AcceleratorName = machine.AcceleratorName;
            StartedAt = DateTimeOffset.UtcNow;
            _state = VmmState.Running;
        }

        Log.Info("vmm::migration", $"incoming migration complete: the microVM runs ({started.Elapsed.TotalMilliseconds:0.0} ms after the commit)");
        RaiseStatusChanged();
    }
}
