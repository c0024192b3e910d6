namespace SharpVisor.Host.Vmm;

/// <summary>One token bucket of a rate limit (Firecracker's semantics: a zero size or refill time means no limit).</summary>
public sealed record TokenBucketConfiguration(long Size, long OneTimeBurst, long RefillTimeMs)
{
    /// <summary>Largest size or burst accepted: far beyond any real rate, and exact in the bucket's arithmetic.</summary>
    public const long MaxTokens = 1L << 53;

    /// <summary>Longest refill time accepted: one day.</summary>
    public const long MaxRefillTimeMs = 24L * 3600 * 1000;

    public bool IsUnlimited => Size == 0 || RefillTimeMs == 0;

    /// <summary>Null when the values are acceptable, else why not (for the field named <paramref name="field"/>).</summary>
    public string? Problem(string field)
    {
        if (Size < 0 || OneTimeBurst < 0 || RefillTimeMs < 0)
        {
            return $"{field}: size, one_time_burst and refill_time must not be negative";
        }

        if (Size > MaxTokens || OneTimeBurst > MaxTokens)
        {
            return $"{field}: size and one_time_burst must be at most {MaxTokens}";
        }

        return RefillTimeMs > MaxRefillTimeMs ? $"{field}: refill_time must be at most {MaxRefillTimeMs} ms (one day)" : null;
    }

    public Devices.RateLimiting.TokenBucket? Create() => IsUnlimited ? null : new(Size, OneTimeBurst, RefillTimeMs);
}
