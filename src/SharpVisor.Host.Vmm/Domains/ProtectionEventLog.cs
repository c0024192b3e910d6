using System.Globalization;
using SharpVisor.Host.Firecracker;
using SharpVisor.Machine.Protection;
using SharpVisor.Security;

namespace SharpVisor.Host.Domains;

/// <summary>
/// The most recent protection violations of one domain (at most <see cref="Capacity"/>, newest
/// last), for the VMM's API: bounded, so a guest that violates in a loop costs no more memory.
/// </summary>
public sealed class ProtectionEventLog
{
    public const int Capacity = 64;

    private readonly Queue<ProtectionEvent> _events = new();
    private readonly TimeProvider _clock;

    public ProtectionEventLog(KernelProtector protector, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(protector);
        _clock = clock ?? TimeProvider.System;
        protector.Violated += Add;
    }

    public IReadOnlyList<ProtectionEvent> Recent()
    {
        lock (_events)
        {
            return _events.ToArray();
        }
    }

    private void Add(ProtectionViolation violation)
    {
        var e = new ProtectionEvent
        {
            Time = _clock.GetUtcNow(),
            Kind = KernelProtector.KindName(violation.Kind),
            Vcpu = violation.Vcpu,
            Rip = Hex(violation.Rip),
            Target = Hex(violation.Target),
            Value = Hex(violation.Value),
            Blocked = violation.Blocked,
        };
        lock (_events)
        {
            if (_events.Count == Capacity)
            {
                _events.Dequeue();
            }

            _events.Enqueue(e);
        }
    }

    private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
