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
    private readonly StreamWriter _writer;
    private readonly Thread _thread;

    private RipProfiler(X86Cpu cpu, StreamWriter writer)
    {
        _cpu = cpu;
        _writer = writer;
        _thread = new Thread(Run) { IsBackground = true, Name = "rip-profile" };
    }

    /// <summary>
    /// Starts the profiler for <paramref name="cpu"/> when the environment asks for one; a file
    /// that cannot be created fails here, on the caller's thread, not on the sampler's.
    /// </summary>
    public static void StartIfRequested(X86Cpu cpu)
    {
        string? path = Environment.GetEnvironmentVariable("SHARPVISOR_RIP_PROFILE");
        if (!string.IsNullOrEmpty(path))
        {
            new RipProfiler(cpu, new StreamWriter(path, append: false))._thread.Start();
        }
    }

    private void Run()
    {
        try
        {
            Sample(_writer);
        }
        catch (IOException)
        {
            // A full disk ends the profile, not the machine.
        }
        finally
        {
            _writer.Dispose();
        }
    }

    private void Sample(StreamWriter writer)
    {
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
