using System.Globalization;
using System.Runtime.InteropServices;
using Iced.Intel;
using SharpVisor.Emulator;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Bench.EmulatorLinux;

/// <summary>
/// A sampling profile of guest RIPs in 64-byte buckets; the hottest are printed with the code at
/// the sampled address (read through the CPU's MMU), which is enough to recognise a loop.
/// </summary>
internal sealed class Profile
{
    private readonly Dictionary<ulong, long> _samples = new();
    private readonly Dictionary<ulong, ulong> _example = new();
    private long _total;
    private long _user;

    public void Sample(ulong rip)
    {
        _total++;
        if (rip < 0x8000_0000_0000_0000)
        {
            _user++;
            return;
        }

        ulong bucket = rip & ~63UL;
        _samples[bucket] = _samples.GetValueOrDefault(bucket) + 1;
        _example.TryAdd(bucket, rip);
    }

    public unsafe void Print(TextWriter writer, X86Cpu cpu, int top = 25)
    {
        writer.WriteLine($"profile: {_total} samples, {100.0 * _user / Math.Max(1, _total):F1}% user");
        foreach ((ulong bucket, long count) in _samples.OrderByDescending(p => p.Value).Take(top))
        {
            ulong rip = _example[bucket];
            string code = "?";
            Translation t = cpu.Mmu.Translate(rip, PageAccess.Read);
            if (t.IsRam)
            {
                int length = (int)Math.Min(48, 0x1000 - (rip & 0xFFF));
                byte[] bytes = new Span<byte>((void*)t.HostAddress, length).ToArray();
                var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes), rip);
                var parts = new List<string>();
                for (int i = 0; i < 4 && decoder.IP < rip + (ulong)length; i++)
                {
                    parts.Add(decoder.Decode().ToString());
                }

                code = string.Join(" ; ", parts);
            }

            writer.WriteLine($"  {100.0 * count / _total,5:F1}%  {rip:x}  {code}");
        }
    }
}
