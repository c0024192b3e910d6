namespace SharpVisor.Cli;

/// <summary>
/// Decides, every progress interval, whether SharpVisor says anything about a silent guest. Before
/// the guest's first serial byte a silent interval is reported (a slow boot must not look like a
/// hang). After it, on an interactive console, the terminal belongs to the guest: only real trouble
/// is reported — a vCPU that has run for <see cref="StuckIntervals"/> whole intervals without
/// halting while the guest said nothing (an idle guest halts) — once per episode. Verbose runs and
/// non-interactive consoles report every silent interval, as before.
/// </summary>
public sealed class ProgressPolicy
{
    /// <summary>Silent intervals without a halt before a vCPU counts as stuck.</summary>
    public const int StuckIntervals = 6;

    private readonly bool _quietAfterGuestOutput;
    private long _lastSerialBytes;
    private VcpuActivity[] _last = [];
    private int[] _busyIntervals = [];
    private bool[] _reported = [];

    public ProgressPolicy(bool quietAfterGuestOutput)
    {
        _quietAfterGuestOutput = quietAfterGuestOutput;
    }

    /// <summary>The vCPUs found stuck by the last <see cref="Next"/> that returned <see cref="ProgressVerdict.Stuck"/>.</summary>
    public IReadOnlyList<int> StuckVcpus { get; private set; } = [];

    /// <summary>Takes one interval's sample: serial bytes written so far and each vCPU's halt and instruction counts.</summary>
    public ProgressVerdict Next(long serialBytes, IReadOnlyList<VcpuActivity> vcpus)
    {
        ArgumentNullException.ThrowIfNull(vcpus);
        if (_last.Length != vcpus.Count)
        {
            _last = vcpus.ToArray();
            _busyIntervals = new int[vcpus.Count];
            _reported = new bool[vcpus.Count];
        }

        bool spoke = serialBytes != _lastSerialBytes;
        _lastSerialBytes = serialBytes;
        var stuck = new List<int>();
        for (int i = 0; i < vcpus.Count; i++)
        {
            // Busy: executed instructions and never halted in the whole interval (software accelerator;
            // KVM halts in the kernel and counts neither, so it never looks busy here).
            bool busy = vcpus[i].Halts == _last[i].Halts && vcpus[i].Instructions > _last[i].Instructions;
            _last[i] = vcpus[i];
            if (!busy || spoke)
            {
                _busyIntervals[i] = 0;
                _reported[i] = false;
                continue;
            }

            _busyIntervals[i]++;
            if (_busyIntervals[i] >= StuckIntervals && !_reported[i])
            {
                _reported[i] = true;
                stuck.Add(i);
            }
        }

        if (spoke)
        {
            return ProgressVerdict.Quiet;
        }

        if (!_quietAfterGuestOutput || serialBytes == 0)
        {
            return ProgressVerdict.Silent;
        }

        if (stuck.Count > 0)
        {
            StuckVcpus = stuck;
            return ProgressVerdict.Stuck;
        }

        return ProgressVerdict.Quiet;
    }
}
