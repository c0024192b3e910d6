namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The APIC bus (the system bus on modern parts): carries IPIs between local APICs, I/O APIC
/// redirections and MSIs to the local APICs their destination selects, and EOI broadcasts back to
/// the I/O APIC. One per machine.
/// </summary>
public sealed class ApicBus
{
    private readonly object _lock = new();
    private volatile LocalApic[] _apics = Array.Empty<LocalApic>();
    private int _lowestPriorityCursor;

    public IReadOnlyList<LocalApic> LocalApics => _apics;

    /// <summary>The 8259 pair, which local APICs consult through LINT0 in ExtINT mode.</summary>
    public IExternalInterruptSource? ExternalInterrupts { get; set; }

    /// <summary>Receives the vector of every EOI for a level-triggered interrupt (the I/O APIC's remote IRR).</summary>
    public Action<int>? EoiListener { get; set; }

    internal void Attach(LocalApic apic)
    {
        lock (_lock)
        {
            foreach (LocalApic existing in _apics)
            {
                if (existing.VcpuId == apic.VcpuId)
                {
                    throw new InvalidOperationException($"a local APIC for vCPU {apic.VcpuId} is already on the bus");
                }
            }

            _apics = [.. _apics, apic];
        }
    }

    /// <summary>Delivers a message to every local APIC it selects; returns how many received it.</summary>
    public int Deliver(in ApicMessage message)
    {
        LocalApic[] apics = _apics;
        Span<bool> selected = apics.Length <= 64 ? stackalloc bool[apics.Length] : new bool[apics.Length];
        int count = 0;
        for (int i = 0; i < apics.Length; i++)
        {
            selected[i] = IsSelected(apics[i], message);
            count += selected[i] ? 1 : 0;
        }

        if (count == 0)
        {
            return 0;
        }

        if (message.DeliveryMode == ApicDeliveryMode.LowestPriority && count > 1)
        {
            int target = PickLowestPriority(apics, selected);
            apics[target].Receive(message);
            return 1;
        }

        for (int i = 0; i < apics.Length; i++)
        {
            if (selected[i])
            {
                apics[i].Receive(message);
            }
        }

        return count;
    }

    /// <summary>A local APIC's EOI of a level-triggered vector.</summary>
    public void BroadcastEoi(int vector) => EoiListener?.Invoke(vector);

    private static bool IsSelected(LocalApic apic, in ApicMessage message)
    {
        bool isSource = ReferenceEquals(apic, message.Source);
        return message.Shorthand switch
        {
            ApicDestinationShorthand.Self => isSource,
            ApicDestinationShorthand.AllIncludingSelf => apic.IsHardwareEnabled,
            ApicDestinationShorthand.AllExcludingSelf => !isSource && apic.IsHardwareEnabled,
            _ => apic.MatchesDestination(message),
        };
    }

    /// <summary>Lowest arbitration priority wins; ties rotate so no CPU takes every interrupt.</summary>
    private int PickLowestPriority(LocalApic[] apics, ReadOnlySpan<bool> selected)
    {
        int start;
        lock (_lock)
        {
            start = _lowestPriorityCursor = (_lowestPriorityCursor + 1) % apics.Length;
        }

        int best = -1;
        uint bestPriority = uint.MaxValue;
        for (int n = 0; n < apics.Length; n++)
        {
            int i = (start + n) % apics.Length;
            if (!selected[i])
            {
                continue;
            }

            uint priority = apics[i].ArbitrationPriority;
            if (priority < bestPriority)
            {
                best = i;
                bestPriority = priority;
            }
        }

        return best;
    }
}
