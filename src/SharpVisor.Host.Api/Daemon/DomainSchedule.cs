namespace SharpVisor.Host.Daemon;

/// <summary>
/// The Xen credit scheduler's two knobs: weight (relative share, 1-65535, default 256) and
/// cap (most CPU the domain may use, in percent of one host CPU; 0 = no cap).
/// </summary>
public sealed record DomainSchedule
{
    public const int DefaultWeight = 256;
    public const int MaxWeight = 65535;

    public int Weight { get; init; } = DefaultWeight;

    public int Cap { get; init; }
}
