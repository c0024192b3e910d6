namespace SharpVisor.Devices.RateLimiting;

/// <summary>
/// A device's limit, as Firecracker's RateLimiter: a bandwidth bucket (bytes) and an operations
/// bucket (requests or frames), either optional. One request is admitted only when both allow it.
/// </summary>
public sealed class RateLimiter
{
    public RateLimiter(TokenBucket? bandwidth, TokenBucket? ops)
    {
        Bandwidth = bandwidth;
        Ops = ops;
    }

    public TokenBucket? Bandwidth { get; }

    public TokenBucket? Ops { get; }

    /// <summary>Requests that had to wait for tokens.</summary>
    public long Throttled { get; private set; }

    /// <summary>
    /// Admits one operation of <paramref name="bytes"/> bytes, or returns false with how long to
    /// wait before asking again (nothing is consumed then).
    /// </summary>
    public bool TryAdmit(long bytes, out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        TimeSpan opsWait = Ops?.TimeUntilAvailable(1) ?? TimeSpan.Zero;
        TimeSpan bytesWait = Bandwidth?.TimeUntilAvailable(bytes) ?? TimeSpan.Zero;
        if (opsWait > TimeSpan.Zero || bytesWait > TimeSpan.Zero)
        {
            Throttled++;
            wait = opsWait > bytesWait ? opsWait : bytesWait;
            return false;
        }

        Ops?.TryConsume(1);
        Bandwidth?.TryConsume(bytes);
        return true;
    }
}
