using System.Numerics;
using SharpVisor.Emulator.Platform;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>kvmclock structures, read back the way Linux's pvclock code reads them.</summary>
public sealed class KvmClockTests : IDisposable
{
    private const ulong TimeInfoGpa = 0x0010_0040;
    private const ulong WallClockGpa = 0x0010_0100;

    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2024, 3, 15, 13, 45, 30, TimeSpan.Zero).AddTicks(1_234_567));
    private readonly GuestMemory _memory = GuestMemory.CreateRam(16UL << 20);
    private readonly PlatformLog _log = new();

    public void Dispose() => _memory.Dispose();

    [Theory]
    [InlineData(2_000_000_000UL, 0x8000_0000u, 0)]
    [InlineData(1_000_000_000UL, 0x8000_0000u, 1)]
    [InlineData(3_000_000_000UL, 2_863_311_530u, -1)]
    public void TimeScaleMatchesKvm(ulong tscHz, uint multiplier, int shift)
    {
        KvmClock.GetTimeScale(1_000_000_000, tscHz, out sbyte actualShift, out uint actualMultiplier);
        Assert.Equal(multiplier, actualMultiplier);
        Assert.Equal(shift, actualShift);
    }

    [Theory]
    [InlineData(2_000_000_000L)]
    [InlineData(2_345_678_901L)]
    [InlineData(3_600_000_000L)]
    [InlineData(1_800_000_000L)]
    [InlineData(500_000_000L)]
    public void GuestComputesTimeFromTheTscAsLinuxDoes(long tscHz)
    {
        var time = new PlatformTimeBase(_clock, tscHz);
        var kvmclock = new KvmClock(_memory, time, 1, _log);
        _clock.AdvanceMilliseconds(5);
        Assert.True(kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1));
        Assert.True(kvmclock.IsEnabled(0));

        PvclockTimeInfo info = ReadTimeInfo(TimeInfoGpa);
        Assert.Equal(0u, info.Version & 1);
        Assert.NotEqual(0u, info.Version);
        Assert.Equal(KvmClock.PvclockTscStableBit, info.Flags);
        Assert.Equal(5_000_000UL, info.SystemTime);
        Assert.Equal(time.NanosecondsToTsc(5_000_000), info.TscTimestamp);

        foreach (long step in (long[])[1, 999, 1_234_567, 1_000_000_000, 10_000_000_000])
        {
            _clock.Advance(step);
            long guestNs = (long)PvclockRead(info, time.ReadTsc());
            long expected = time.NowNanoseconds;

            // Exact when the scale is exact (2 GHz); otherwise within the 32-bit fraction's error plus a TSC tick.
            long tolerance = tscHz == 2_000_000_000 ? 0 : 2 + (expected / 1_000_000_000);
            Assert.InRange(guestNs, expected - tolerance, expected + tolerance);
        }
    }

    [Fact]
    public void PvclockTscKhzRecoversTheAdvertisedFrequency()
    {
        var time = new PlatformTimeBase(_clock, 2_345_678_901);
        var kvmclock = new KvmClock(_memory, time, 1);
        kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1);
        PvclockTimeInfo info = ReadTimeInfo(TimeInfoGpa);

        // pvclock_tsc_khz: pv_tsc_khz = (1000000ULL << 32) / mul, then shifted back.
        ulong khz = (1_000_000UL << 32) / info.Multiplier;
        khz = info.Shift < 0 ? khz << -info.Shift : khz >> info.Shift;
        Assert.InRange((long)khz, 2_345_677, 2_345_680);
    }

    [Fact]
    public void VersionIsOddDuringAnUpdateAndEvenAfter()
    {
        _memory.Write<uint>(TimeInfoGpa, 7);
        var kvmclock = new KvmClock(_memory, new PlatformTimeBase(_clock), 2, _log);
        kvmclock.WriteMsr(1, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1);
        Assert.Equal(10u, _memory.Read<uint>(TimeInfoGpa));
        kvmclock.WriteMsr(1, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1);
        Assert.Equal(12u, _memory.Read<uint>(TimeInfoGpa));
        Assert.False(kvmclock.IsEnabled(0));
        Assert.True(kvmclock.IsEnabled(1));
    }

    [Fact]
    public void WallClockIsTheHostTimeAtKvmclockZero()
    {
        var time = new PlatformTimeBase(_clock);
        var kvmclock = new KvmClock(_memory, time, 1, _log);
        _clock.AdvanceMilliseconds(1500);
        _memory.Write<uint>(WallClockGpa, 3); // junk from before: odd
        Assert.True(kvmclock.WriteMsr(0, KvmClock.MsrWallClockNew, WallClockGpa));

        Assert.Equal(6u, _memory.Read<uint>(WallClockGpa));
        uint sec = _memory.Read<uint>(WallClockGpa + 4);
        uint nsec = _memory.Read<uint>(WallClockGpa + 8);
        long unix = new DateTimeOffset(2024, 3, 15, 13, 45, 30, TimeSpan.Zero).ToUnixTimeSeconds();
        Assert.Equal((uint)unix, sec);
        Assert.Equal(123_456_700u, nsec);
        Assert.True(kvmclock.ReadMsr(0, KvmClock.MsrWallClockNew, out ulong value));
        Assert.Equal(WallClockGpa, value);

        // Linux: wall time now = wall clock + kvmclock system time.
        kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1);
        ulong nowNs = PvclockRead(ReadTimeInfo(TimeInfoGpa), time.ReadTsc());
        long guestWallTicks = (((long)sec * 1_000_000_000) + nsec + (long)nowNs) / 100;
        Assert.Equal(_clock.GetUtcNow().ToUnixTimeMilliseconds(), DateTimeOffset.UnixEpoch.AddTicks(guestWallTicks).ToUnixTimeMilliseconds());
    }

    [Theory]
    [InlineData(0x0200_0000UL | 1)] // beyond RAM
    [InlineData(0x0000_FFF0UL | 1)] // crosses a page
    [InlineData(0xFFFF_FFFF_FFFF_FFE1UL)] // wraps
    public void BadGuestAddressesDisableTheClockWithAReason(ulong msrValue)
    {
        var kvmclock = new KvmClock(_memory, new PlatformTimeBase(_clock), 1, _log);
        Assert.True(kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, msrValue));
        Assert.False(kvmclock.IsEnabled(0));
        Assert.Contains("kvmclock disabled", _log.LastMessage);
        Assert.True(kvmclock.ReadMsr(0, KvmClock.MsrSystemTimeNew, out ulong readBack));
        Assert.Equal(msrValue, readBack);

        Assert.True(kvmclock.WriteMsr(0, KvmClock.MsrWallClockNew, 0x0200_0000));
        Assert.Contains("not in guest RAM", _log.LastMessage);
    }

    [Fact]
    public void ClearingTheEnableBitDisables()
    {
        var kvmclock = new KvmClock(_memory, new PlatformTimeBase(_clock), 1, _log);
        kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1);
        uint version = _memory.Read<uint>(TimeInfoGpa);
        kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, TimeInfoGpa);
        Assert.False(kvmclock.IsEnabled(0));
        kvmclock.NotifyGuestStopped();
        Assert.Equal(version, _memory.Read<uint>(TimeInfoGpa));
    }

    [Fact]
    public void OnlyKvmclockMsrsAndExistingVcpusAreAccepted()
    {
        var kvmclock = new KvmClock(_memory, new PlatformTimeBase(_clock), 2, _log);
        Assert.False(kvmclock.WriteMsr(0, 0x4B56_4D02, 0));
        Assert.False(kvmclock.WriteMsr(2, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1));
        Assert.False(kvmclock.ReadMsr(-1, KvmClock.MsrSystemTimeNew, out _));

        // The legacy MSR number uses the same structure.
        Assert.True(kvmclock.WriteMsr(1, KvmClock.MsrSystemTime, TimeInfoGpa | 1));
        Assert.True(kvmclock.IsEnabled(1));
    }

    [Fact]
    public void GuestStoppedFlagIsPublishedAfterAPause()
    {
        var platformTime = new PlatformTimeBase(_clock);
        var kvmclock = new KvmClock(_memory, platformTime, 1, _log);
        kvmclock.WriteMsr(0, KvmClock.MsrSystemTimeNew, TimeInfoGpa | 1);
        uint version = _memory.Read<uint>(TimeInfoGpa);
        kvmclock.NotifyGuestStopped();
        PvclockTimeInfo info = ReadTimeInfo(TimeInfoGpa);
        Assert.Equal(version + 2, info.Version);
        Assert.Equal(KvmClock.PvclockTscStableBit | KvmClock.PvclockGuestStopped, info.Flags);
    }

    [Fact]
    public void CpuidLeavesSayKvmWithKvmclock()
    {
        Assert.True(KvmCpuid.TryGetLeaf(0x4000_0000, out uint eax, out uint ebx, out uint ecx, out uint edx));
        Assert.Equal(0x4000_0001u, eax);
        byte[] signature = [.. BitConverter.GetBytes(ebx), .. BitConverter.GetBytes(ecx), .. BitConverter.GetBytes(edx)];
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(signature));

        Assert.True(KvmCpuid.TryGetLeaf(0x4000_0001, out eax, out _, out _, out _));
        Assert.NotEqual(0u, eax & (1u << 3)); // KVM_FEATURE_CLOCKSOURCE2
        Assert.NotEqual(0u, eax & (1u << 24)); // KVM_FEATURE_CLOCKSOURCE_STABLE_BIT
        Assert.Equal(0u, eax & ~((1u << 3) | (1u << 24) | (1u << 1))); // nothing unimplemented
        Assert.False(KvmCpuid.TryGetLeaf(0x4000_0002, out _, out _, out _, out _));
    }

    private PvclockTimeInfo ReadTimeInfo(ulong gpa) => new(
        _memory.Read<uint>(gpa),
        _memory.Read<ulong>(gpa + 8),
        _memory.Read<ulong>(gpa + 16),
        _memory.Read<uint>(gpa + 24),
        _memory.Read<sbyte>(gpa + 28),
        _memory.Read<byte>(gpa + 29));

    /// <summary>Linux's __pvclock_read_cycles with pvclock_scale_delta (mul_u64_u32_shr).</summary>
    private static ulong PvclockRead(PvclockTimeInfo info, ulong tsc)
    {
        ulong delta = tsc - info.TscTimestamp;
        delta = info.Shift < 0 ? delta >> -info.Shift : delta << info.Shift;
        return info.SystemTime + (ulong)((BigInteger)delta * info.Multiplier >> 32);
    }

    private readonly record struct PvclockTimeInfo(uint Version, ulong TscTimestamp, ulong SystemTime, uint Multiplier, sbyte Shift, byte Flags);
}
