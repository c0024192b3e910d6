namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /serial: where the guest's serial output goes instead of standard output.</summary>
public sealed record SerialDevice
{
    /// <summary>A file or FIFO that exists (as for the logger); appended to.</summary>
    public string? SerialOutPath { get; init; }

    /// <summary>Parsed only to refuse it: serial output is not rate limited yet.</summary>
    public TokenBucket? RateLimiter { get; init; }
}
