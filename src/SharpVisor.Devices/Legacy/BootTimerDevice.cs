using System.Diagnostics;
using System.Globalization;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Legacy;

/// <summary>
/// Firecracker's boot-timer pseudo device (<c>--boot-timer</c>): one MMIO page at
/// <see cref="Address"/> where the guest writes the byte <see cref="Magic"/> (at offset 0)
/// when its boot is complete; the time since the device was created (InstanceStart) is reported
/// in Firecracker's words. Reads return zeros. A guest writing the magic in a loop is heard at
/// most <see cref="MaxReports"/> times, so it cannot flood the VMM's log.
/// </summary>
public sealed class BootTimerDevice : IMmioDevice
{
    /// <summary>Firecracker's BOOT_DEVICE_MEM_START on x86_64: the first page of the 32-bit MMIO hole.</summary>
    public const ulong Address = 0xC000_0000;
    public const ulong Size = 0x1000;
    public const byte Magic = 123;
    public const int MaxReports = 100;

    private readonly Action<string> _report;
    private readonly long _startTimestamp = Stopwatch.GetTimestamp();
    private readonly TimeSpan _startCpu = Environment.CpuUsage.TotalTime;
    private int _reports;

    public BootTimerDevice(Action<string> report)
    {
        _report = report;
    }

    public void Read(ulong offset, Span<byte> data) => data.Clear();

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        // As Firecracker: only a one-byte write at offset 0 counts.
        if (offset != 0 || data.Length != 1 || data[0] != Magic || Interlocked.Increment(ref _reports) > MaxReports)
        {
            return;
        }

        long wallUs = (long)Stopwatch.GetElapsedTime(_startTimestamp).TotalMicroseconds;
        long cpuUs = (long)(Environment.CpuUsage.TotalTime - _startCpu).TotalMicroseconds;
        _report(Format(wallUs, cpuUs));
    }

    /// <summary>Firecracker's line: "Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms".</summary>
    public static string Format(long wallUs, long cpuUs) => string.Create(
        CultureInfo.InvariantCulture,
        $"Guest-boot-time = {wallUs,6} us {wallUs / 1000} ms, {cpuUs,6} CPU us {cpuUs / 1000} CPU ms");
}
