namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PATCH /balloon: a new target size.</summary>
public sealed record BalloonUpdate
{
    public required long AmountMib { get; init; }
}
