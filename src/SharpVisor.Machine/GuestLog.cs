namespace SharpVisor.Machine;

/// <summary>
/// The one log path for everything a guest can trigger (a device failed, a bad PFN, a BAR
/// outside the windows). A hostile guest can hit these lines millions of times a second, so
/// the path is bounded and safe: a token bucket lets <see cref="Burst"/> lines through at
/// once and <see cref="LinesPerSecond"/> after that, the rest are counted and summarised in
/// one line when logging resumes; each line is cut at <see cref="MaxLineLength"/> characters;
/// and a sink that throws (stderr on a full disk) is counted, never propagated — a log line
/// must not fail a device, let alone the process.
/// </summary>
public sealed class GuestLog
{
    public const int DefaultBurst = 100;
    public const double DefaultLinesPerSecond = 10;
    public const int MaxLineLength = 512;

    private readonly Action<string>? _sink;
    private readonly GuestLog? _parent;
    private readonly string _prefix = "";
    private readonly TimeProvider _clock;
    private readonly object _lock = new();
    private double _tokens;
    private long _lastRefill;
    private long _offered;
    private long _suppressed;
    private long _suppressedSinceLastLine;
    private long _sinkFailures;
    private volatile string? _lastMessage;

    public GuestLog(Action<string>? sink, int burst = DefaultBurst, double linesPerSecond = DefaultLinesPerSecond, TimeProvider? clock = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(linesPerSecond);
        _sink = sink;
        _clock = clock ?? TimeProvider.System;
        Burst = burst;
        LinesPerSecond = linesPerSecond;
        _tokens = burst;
        _lastRefill = _clock.GetTimestamp();
    }

    private GuestLog(GuestLog parent, string prefix)
    {
        _parent = parent;
        _prefix = prefix;
        _clock = parent._clock;
        Burst = parent.Burst;
        LinesPerSecond = parent.LinesPerSecond;
    }

    /// <summary>A log that writes nowhere but still counts.</summary>
    public static GuestLog Null => new(null);

    public int Burst { get; }

    public double LinesPerSecond { get; }

    /// <summary>Messages offered, written or not (shared with every prefixed view).</summary>
    public long Count => _parent?.Count ?? Interlocked.Read(ref _offered);

    /// <summary>Messages dropped by the rate limit.</summary>
    public long Suppressed => _parent?.Suppressed ?? Interlocked.Read(ref _suppressed);

    /// <summary>Lines the sink refused by throwing (they are lost).</summary>
    public long SinkFailures => _parent?.SinkFailures ?? Interlocked.Read(ref _sinkFailures);

    public string? LastMessage => _parent?.LastMessage ?? _lastMessage;

    /// <summary>Logs <paramref name="message"/> if the rate allows; never throws.</summary>
    public void Write(string message)
    {
        if (_parent is not null)
        {
            _parent.Write(_prefix + message);
            return;
        }

        Interlocked.Increment(ref _offered);
        _lastMessage = message;
        long suppressedBefore;
        lock (_lock)
        {
            Refill();
            if (_tokens < 1)
            {
                _suppressed++;
                _suppressedSinceLastLine++;
                return;
            }

            _tokens -= 1;
            suppressedBefore = _suppressedSinceLastLine;
            _suppressedSinceLastLine = 0;
        }

        if (suppressedBefore > 0)
        {
            Emit($"log: {suppressedBefore} guest-triggered messages suppressed (rate limit {Burst} then {LinesPerSecond}/s)");
        }

        Emit(message.Length > MaxLineLength ? string.Concat(message.AsSpan(0, MaxLineLength), "...") : message);
    }

    /// <summary>A view that prefixes every line with <paramref name="prefix"/> and shares this log's limit and counters.</summary>
    public GuestLog WithPrefix(string prefix) => new(_parent ?? this, _prefix + prefix);

    private void Refill()
    {
        long now = _clock.GetTimestamp();
        double seconds = (double)(now - _lastRefill) / _clock.TimestampFrequency;
        if (seconds > 0)
        {
            _tokens = Math.Min(Burst, _tokens + (seconds * LinesPerSecond));
            _lastRefill = now;
        }
    }

    private void Emit(string line)
    {
        if (_sink is null)
        {
            return;
        }

        try
        {
            _sink(line);
        }
        catch (Exception)
        {
            // Whatever the sink's trouble (ENOSPC, a closed pipe, a disposed writer), the line
            // is lost and counted; the caller — a device or a vCPU thread — carries on.
            Interlocked.Increment(ref _sinkFailures);
        }
    }
}
