using System.Globalization;
using System.Runtime.InteropServices;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Cli;

/// <summary>
/// `sharpvisor run --counters FILE`: the VMM's counters (exits, and a Xen domain's hypercalls,
/// upcalls, grant copies, XenStore requests, back-end requests) appended to FILE as one
/// `COUNTERS n name=value ...` line on each SIGUSR2 and when the guest stops, so that a benchmark
/// can take them between its phases (bench/xen-io). The file starts with `PID n`: whom to signal.
/// </summary>
public sealed class CounterDump : IDisposable
{
    private const int SigUsr2 = 12;   // x86-64 Linux

    private readonly VirtualMachineMonitor _vmm;
    private readonly string _path;
    private readonly PosixSignalRegistration _signal;
    private readonly object _lock = new();
    private int _snapshots;
    private bool _disposed;

    public CounterDump(VirtualMachineMonitor vmm, string path)
    {
        ArgumentNullException.ThrowIfNull(vmm);
        _vmm = vmm;
        _path = path;
        File.WriteAllText(path, $"PID {Environment.ProcessId}\n");
        _signal = PosixSignalRegistration.Create((PosixSignal)SigUsr2, context =>
        {
            context.Cancel = true;   // a snapshot, not an exit
            Write();
        });
    }

    public void Dispose()
    {
        _signal.Dispose();
        Write();
        lock (_lock)
        {
            _disposed = true;
        }
    }

    private void Write()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            string counts = string.Join(' ', _vmm.ExitCounts().OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key}={p.Value}")));
            File.AppendAllText(_path, string.Create(CultureInfo.InvariantCulture, $"COUNTERS {_snapshots++} {counts}\n"));
        }
    }
}
