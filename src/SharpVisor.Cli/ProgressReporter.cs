using System.Diagnostics;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Cli;

/// <summary>
/// While the guest is silent on its serial console, says every interval that it is still
/// running and which exits it makes — so a slow boot is never mistaken for a hang.
/// </summary>
public sealed class ProgressReporter : IDisposable
{
    private readonly VirtualMachineMonitor _vmm;
    private readonly Notices _notices;
    private readonly Stopwatch _startedAt;
    private readonly TimeSpan _interval;
    private readonly Timer _timer;
    private long _lastSerialBytes;

    public ProgressReporter(VirtualMachineMonitor vmm, Notices notices, Stopwatch startedAt, TimeSpan interval)
    {
        _vmm = vmm;
        _notices = notices;
        _startedAt = startedAt;
        _interval = interval;
        _timer = new Timer(_ => Tick(), null, interval, interval);
    }

    private void Tick()
    {
        long bytes = _vmm.SerialBytesWritten;
        long last = Interlocked.Exchange(ref _lastSerialBytes, bytes);
        if (bytes != last || _vmm.Control.IsStopRequested)
        {
            return;
        }

        string exits = string.Join(", ", _vmm.ExitCounts().OrderByDescending(p => p.Value).Take(6).Select(p => $"{p.Key} {p.Value}"));
        IReadOnlyList<ulong>? rips = _vmm.SampleInstructionPointers();
        string where = rips is null ? "" : "; " + string.Join(", ", rips.Select((rip, i) => $"vCPU {i} at RIP {rip:x}"));
        _notices.Say($"{_startedAt.Elapsed.TotalSeconds:0} s: guest running, no serial output for {_interval.TotalSeconds:0} s " +
            $"({bytes} bytes so far); exits: {(exits.Length == 0 ? "none" : exits)}{where}");
    }

    public void Dispose() => _timer.Dispose();
}
