using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The machine's virtual time: a monotonic nanosecond clock and a virtual TSC running at a fixed
/// advertised frequency, both derived from one <see cref="TimeProvider"/>. The LAPIC timers, the
/// PIT, the RTC and kvmclock all read it, so they agree with each other and with RDTSC. Tests
/// inject a manual provider and advance time deterministically; production uses the system
/// provider (Stopwatch ticks). Time stands still while the machine is paused.
/// </summary>
public sealed class PlatformTimeBase : ISnapshotable
{
    /// <summary>
    /// Advertised TSC frequency. 2 GHz makes the kvmclock scale exact (mul 2^31, shift 0), so the
    /// guest's kvmclock and the host's nanosecond clock never drift apart.
    /// </summary>
    public const long DefaultTscFrequencyHz = 2_000_000_000;

    /// <summary>The LAPIC timer's bus clock: 1 GHz, one cycle per nanosecond, as KVM uses.</summary>
    public const long ApicBusFrequencyHz = 1_000_000_000;

    public const long NanosecondsPerSecond = 1_000_000_000;

    private readonly object _lock = new();
    private readonly long _startTimestamp;
    private DateTimeOffset _wallClockAtZero;

    // Replaced as a whole on pause/resume, so readers need no lock.
    private volatile PauseState _pause = new(-1, 0);

    public PlatformTimeBase(TimeProvider? clock = null, long tscFrequencyHz = DefaultTscFrequencyHz)
    {
        if (tscFrequencyHz < 1_000_000 || tscFrequencyHz > 100_000_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(tscFrequencyHz), "TSC frequency must be between 1 MHz and 100 GHz");
        }

        Clock = clock ?? TimeProvider.System;
        TscFrequencyHz = tscFrequencyHz;
        _startTimestamp = Clock.GetTimestamp();
        _wallClockAtZero = Clock.GetUtcNow();
    }

    public TimeProvider Clock { get; }

    public long TscFrequencyHz { get; }

    /// <summary>Virtual nanoseconds since the machine was created (monotonic; frozen while paused).</summary>
    public long NowNanoseconds
    {
        get
        {
            PauseState pause = _pause;
            long now = pause.PausedAtTimestamp >= 0 ? pause.PausedAtTimestamp : Clock.GetTimestamp();
            long ticks = now - _startTimestamp - pause.PausedTicks;

            long frequency = Clock.TimestampFrequency;
            return frequency == NanosecondsPerSecond ? ticks : (long)((Int128)ticks * NanosecondsPerSecond / frequency);
        }
    }

    public bool IsPaused => _pause.PausedAtTimestamp >= 0;

    /// <summary>The guest's time-stamp counter now.</summary>
    public ulong ReadTsc() => NanosecondsToTsc(NowNanoseconds);

    public ulong NanosecondsToTsc(long nanoseconds) =>
        nanoseconds <= 0 ? 0 : (ulong)((UInt128)(ulong)nanoseconds * (ulong)TscFrequencyHz / NanosecondsPerSecond);

    /// <summary>The first virtual nanosecond at which the TSC reaches <paramref name="tsc"/>.</summary>
    public long TscToNanoseconds(ulong tsc)
    {
        UInt128 ns = ((UInt128)tsc * NanosecondsPerSecond + (ulong)TscFrequencyHz - 1) / (ulong)TscFrequencyHz;
        return ns > long.MaxValue ? long.MaxValue : (long)ns;
    }

    /// <summary>Wall-clock (UTC) time at virtual time <paramref name="nanoseconds"/>.</summary>
    public DateTimeOffset WallClockAt(long nanoseconds) => _wallClockAtZero.AddTicks(nanoseconds / 100);

    /// <summary>Wall-clock time at virtual time zero (the machine's boot), as the kvmclock wall clock reports it.</summary>
    public DateTimeOffset WallClockAtZero => _wallClockAtZero;

    /// <summary>Stops virtual time (the machine is paused). Idempotent.</summary>
    public void Pause()
    {
        lock (_lock)
        {
            PauseState pause = _pause;
            if (pause.PausedAtTimestamp < 0)
            {
                _pause = pause with { PausedAtTimestamp = Clock.GetTimestamp() };
            }
        }
    }

    /// <summary>Lets virtual time run again from where it stopped. Idempotent.</summary>
    public void Resume()
    {
        lock (_lock)
        {
            PauseState pause = _pause;
            if (pause.PausedAtTimestamp >= 0)
            {
                _pause = new PauseState(-1, pause.PausedTicks + Clock.GetTimestamp() - pause.PausedAtTimestamp);
            }
        }
    }

    private sealed record PauseState(long PausedAtTimestamp, long PausedTicks);

    public string SnapshotTag => "platform-time";

    /// <summary>Virtual time and the wall clock at its zero: the restored machine continues from them.</summary>
    public void SaveState(SnapshotWriter w)
    {
        w.Write(NowNanoseconds);
        w.Write(_wallClockAtZero.UtcTicks);
        w.Write(TscFrequencyHz);
    }

    public void LoadState(SnapshotReader r)
    {
        long now = r.ReadInt64();
        long wallTicks = r.ReadInt64();
        long frequency = r.ReadInt64();
        if (now < 0 || frequency != TscFrequencyHz || wallTicks < DateTimeOffset.MinValue.UtcTicks || wallTicks > DateTimeOffset.MaxValue.UtcTicks)
        {
            throw r.Invalid($"virtual time {now} ns at a TSC of {frequency} Hz (this machine: {TscFrequencyHz} Hz)");
        }

        lock (_lock)
        {
            _wallClockAtZero = new DateTimeOffset(wallTicks, TimeSpan.Zero);
            PauseState pause = _pause;
            long timestamp = pause.PausedAtTimestamp >= 0 ? pause.PausedAtTimestamp : Clock.GetTimestamp();
            long frequencyTicks = Clock.TimestampFrequency;
            long ticks = frequencyTicks == NanosecondsPerSecond ? now : (long)((Int128)now * frequencyTicks / NanosecondsPerSecond);
            _pause = pause with { PausedTicks = timestamp - _startTimestamp - ticks };
        }
    }
}
