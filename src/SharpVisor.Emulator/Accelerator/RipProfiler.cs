using System.Diagnostics;
using System.Globalization;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// A guest-RIP profile for finding where a boot's emulated time goes
/// (<c>SHARPVISOR_RIP_PROFILE=FILE</c>, docs/emulator.md "Seventh step"): a background thread reads
/// vCPU 0's running block address every ~100 µs without stopping it and appends
/// <c>monotonic-µs rip tier</c> lines, the tier being 1 when the running block has tier-1 code and 0 otherwise.
/// The read is racy on purpose (an 8-byte aligned load is atomic on x86-64): a sample can be a
/// block late, which a profile of thousands of samples does not notice.
/// </summary>
internal sealed class RipProfiler
{
    private readonly X86Cpu _cpu;
    private readonly string _path;
    private readonly Thread _thread;

    private RipProfiler(X86Cpu cpu, string path)
    {
        _cpu = cpu;
        _path = path;
        _thread = new Thread(Sample) { IsBackground = true, Name = "rip-profile" };
    }

    /// <summary>Starts the profiler for <paramref name="cpu"/> when the environment asks for one.</summary>
    public static void StartIfRequested(X86Cpu cpu)
    {
        string? path = Environment.GetEnvironmentVariable("SHARPVISOR_RIP_PROFILE");
        if (!string.IsNullOrEmpty(path))
        {
            new RipProfiler(cpu, path)._thread.Start();
        }
    }

    private void Sample()
    {
        using var writer = new StreamWriter(_path, append: false);
        long ticksPerMicrosecond = Stopwatch.Frequency / 1_000_000;
        var spin = new SpinWait();
        long next = Stopwatch.GetTimestamp();
        long flushAt = next;
        while (true)
        {
            long now = Stopwatch.GetTimestamp();
            if (now < next)
            {
                // Sleep(0)/yield rather than Sleep(1): a millisecond is ten samples.
                spin.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            next = now + (100 * ticksPerMicrosecond);
            ulong rip = _cpu.SampleBlockAddress(out bool translated);
            writer.Write((now / ticksPerMicrosecond).ToString(CultureInfo.InvariantCulture));
            writer.Write(' ');
            writer.Write(rip.ToString("x", CultureInfo.InvariantCulture));
            writer.WriteLine(translated ? " 1" : " 0");
            if (now - flushAt > Stopwatch.Frequency)
            {
                writer.Flush();
                flushAt = now;
            }
        }
    }
}
