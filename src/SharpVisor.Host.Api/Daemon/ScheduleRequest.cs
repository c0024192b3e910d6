namespace SharpVisor.Host.Daemon;

/// <summary>The body of PUT /domains/{domain}/sched: the knobs to change.</summary>
public sealed record ScheduleRequest
{
    public int? Weight { get; init; }

    public int? Cap { get; init; }
}
