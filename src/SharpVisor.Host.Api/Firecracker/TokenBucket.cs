namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's TokenBucket: <see cref="Size"/> tokens refilled over <see cref="RefillTime"/> ms, plus a one-time burst.</summary>
public sealed record TokenBucket
{
    public required long Size { get; init; }

    public long? OneTimeBurst { get; init; }

    /// <summary>Milliseconds to refill the whole bucket.</summary>
    public required long RefillTime { get; init; }
}
