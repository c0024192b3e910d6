using System.Diagnostics;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Cli;

/// <summary>
/// While the guest is silent on its serial console, says every interval that it is still
/// running and which exits it makes — so a slow boot is never mistaken for a hang. What is said
/// when is <see cref="ProgressPolicy"/>'s decision: on an interactive console nothing after the
/// guest's first byte unless a vCPU is stuck (or --verbose).
/// </summary>
public sealed class ProgressReporter : IDisposable
{
    private readonly VirtualMachineMonitor _vmm;
    private readonly Notices _notices;
    private readonly Stopwatch _startedAt;
    private readonly TimeSpan _interval;
    private readonly ProgressPolicy _policy;
    private readonly Timer _timer;
    private int _ticking;

    public ProgressReporter(VirtualMachineMonitor vmm, Notices notices, Stopwatch startedAt, TimeSpan interval, bool quietAfterGuestOutput)
    {
        _vmm = vmm;
        _notices = notices;
        _startedAt = startedAt;
        _interval = interval;
        _policy = new ProgressPolicy(quietAfterGuestOutput);
        _timer = new Timer(_ => Tick(), null, interval, interval);
    }

    private void Tick()
    {
        // A slow tick (sampling RIPs pauses the guest) must not overlap the next one.
        if (Interlocked.Exchange(ref _ticking, 1) != 0)
        {
            return;
        }

        try
        {
            long bytes = _vmm.SerialBytesWritten;
            VcpuActivity[] activity = _vmm.Vcpus.Select(v => new VcpuActivity(v.Exits["hlt"], v.Exits["instructions"])).ToArray();
            ProgressVerdict verdict = _policy.Next(bytes, activity);
            if (verdict == ProgressVerdict.Quiet || _vmm.Control.IsStopRequested)
            {
                return;
            }

            string exits = string.Join(", ", _vmm.ExitCounts().OrderByDescending(p => p.Value).Take(6).Select(p => $"{p.Key} {p.Value}"));
            IReadOnlyList<ulong>? rips = _vmm.SampleInstructionPointers();
            string where = rips is null ? "" : "; " + string.Join(", ", rips.Select((rip, i) => $"vCPU {i} at RIP {rip:x}"));
            string elapsed = $"{_startedAt.Elapsed.TotalSeconds:0} s";
            if (verdict == ProgressVerdict.Stuck)
            {
                string which = string.Join(", ", _policy.StuckVcpus.Select(i => $"vCPU {i}"));
                _notices.Say($"{elapsed}: {which} ran for {ProgressPolicy.StuckIntervals * _interval.TotalSeconds:0} s without halting " +
                    $"while the guest said nothing; exits: {(exits.Length == 0 ? "none" : exits)}{where}");
                return;
            }

            _notices.Say($"{elapsed}: guest running, no serial output for {_interval.TotalSeconds:0} s " +
                $"({bytes} bytes so far); exits: {(exits.Length == 0 ? "none" : exits)}{where}");
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    public void Dispose() => _timer.Dispose();
}
