using System.Diagnostics;

namespace SharpVisor.Devices.RateLimiting;

/// <summary>
/// Firecracker's token bucket: <see cref="Size"/> tokens refill evenly over
/// <see cref="RefillTimeMs"/> milliseconds, and a <see cref="OneTimeBurst"/> is spent first and
/// never refilled. A request larger than the bucket is admitted when the bucket is full and
/// leaves a debt that the refill pays off, so over time the rate is Size per RefillTime whatever
/// the request sizes. Not thread-safe: one device worker uses it (under the device lock).
/// </summary>
public sealed class TokenBucket
{
    private readonly Func<long> _clock;
    private readonly double _ticksPerToken;
    private long _lastRefill;
    private double _budget;
    private long _burstLeft;

    /// <param name="clock">Stopwatch ticks; tests pass their own.</param>
    public TokenBucket(long size, long oneTimeBurst, long refillTimeMs, Func<long>? clock = null)
    {
        if (size <= 0 || refillTimeMs <= 0 || oneTimeBurst < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "a token bucket needs a positive size and refill time, and a burst of 0 or more");
        }

        Size = size;
        OneTimeBurst = oneTimeBurst;
        RefillTimeMs = refillTimeMs;
        _clock = clock ?? Stopwatch.GetTimestamp;
        _ticksPerToken = (double)refillTimeMs * Stopwatch.Frequency / 1000 / size;
        _budget = size;
        _burstLeft = oneTimeBurst;
        _lastRefill = _clock();
    }

    public long Size { get; }

    public long OneTimeBurst { get; }

    public long RefillTimeMs { get; }

    /// <summary>Tokens available now (burst included; negative while a debt is paid off).</summary>
    public double Available
    {
        get
        {
            Refill();
            return _budget + _burstLeft;
        }
    }

    /// <summary>Takes <paramref name="tokens"/> if the bucket allows it now; false leaves it unchanged.</summary>
    public bool TryConsume(long tokens)
    {
        if (tokens <= 0)
        {
            return true;
        }

        Refill();
        if (_budget + _burstLeft < Math.Min(tokens, Size))
        {
            return false;
        }

        long fromBurst = Math.Min(_burstLeft, tokens);
        _burstLeft -= fromBurst;
        _budget -= tokens - fromBurst;
        return true;
    }

    /// <summary>How long until <see cref="TryConsume"/> of <paramref name="tokens"/> can succeed.</summary>
    public TimeSpan TimeUntilAvailable(long tokens)
    {
        Refill();
        double missing = Math.Min(tokens, Size) - (_budget + _burstLeft);
        if (missing <= 0)
        {
            return TimeSpan.Zero;
        }

        return TimeSpan.FromSeconds(missing * _ticksPerToken / Stopwatch.Frequency);
    }

    private void Refill()
    {
        long now = _clock();
        long elapsed = now - _lastRefill;
        if (elapsed <= 0)
        {
            return;
        }

        _lastRefill = now;
        _budget = Math.Min(Size, _budget + (elapsed / _ticksPerToken));
    }
}
