using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharpVisor.Host.Firecracker;
using SharpVisor.Machine.Protection;
using SharpVisor.Security;

namespace SharpVisor.Host.Domains;

/// <summary>
/// The most recent protection violations of one domain (at most <see cref="Capacity"/>, newest
/// last), for the VMM's API, and the live feed of new ones (<see cref="FollowAsync"/>, the event
/// stream): both bounded, so a guest that violates in a loop costs no more memory.
/// </summary>
public sealed class ProtectionEventLog
{
    public const int Capacity = 64;

    /// <summary>Events a follower may fall behind by before it loses the oldest.</summary>
    public const int FollowerBacklog = 1024;

    private readonly Queue<ProtectionEvent> _events = new();
    private readonly List<Channel<ProtectionEvent>> _followers = new();
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

    /// <summary>
    /// The recent events, then each new one as it happens, until <paramref name="cancel"/>. A
    /// follower that reads too slowly loses the oldest it has not read (<see cref="FollowerBacklog"/>).
    /// </summary>
    public async IAsyncEnumerable<ProtectionEvent> FollowAsync([EnumeratorCancellation] CancellationToken cancel)
    {
        var channel = Channel.CreateBounded<ProtectionEvent>(new BoundedChannelOptions(FollowerBacklog)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        ProtectionEvent[] recent;
        lock (_events)
        {
            // Under the same lock as Add: nothing falls between the recent ones and the live ones.
            recent = _events.ToArray();
            _followers.Add(channel);
        }

        try
        {
            foreach (ProtectionEvent e in recent)
            {
                yield return e;
            }

            await foreach (ProtectionEvent e in channel.Reader.ReadAllAsync(cancel))
            {
                yield return e;
            }
        }
        finally
        {
            lock (_events)
            {
                _followers.Remove(channel);
            }
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
            foreach (Channel<ProtectionEvent> follower in _followers)
            {
                follower.Writer.TryWrite(e);
            }
        }
    }

    private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
