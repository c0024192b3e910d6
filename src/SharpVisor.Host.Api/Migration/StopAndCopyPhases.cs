namespace SharpVisor.Host.Migration;

/// <summary>
/// Where a migration's pause went (the source's clock; the destination's load time as its Ready
/// frame reported it): pausing the vCPUs, the last dirty-log fetch, the last pages, serializing the
/// state, sending it until the destination was ready, and the commit.
/// </summary>
public sealed class StopAndCopyPhases
{
    public TimeSpan Pause { get; set; }

    public TimeSpan DirtyFetch { get; set; }

    public TimeSpan LastPages { get; set; }

    public TimeSpan State { get; set; }

    /// <summary>From sending the state to the destination's Ready: the transfer, the relay through its daemon and its load.</summary>
    public TimeSpan Ready { get; set; }

    /// <summary>The destination's own time to load the state (null when it did not say).</summary>
    public TimeSpan? DestinationLoad { get; set; }

    public TimeSpan Commit { get; set; }

    public string Describe() =>
        $"pause {Ms(Pause)} ms, dirty fetch {Ms(DirtyFetch)} ms, last pages {Ms(LastPages)} ms, state {Ms(State)} ms, " +
        $"transfer and destination load {Ms(Ready)} ms (load {(DestinationLoad is { } load ? Ms(load) : "?")} ms), commit {Ms(Commit)} ms";

    private static string Ms(TimeSpan time) => time.TotalMilliseconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
