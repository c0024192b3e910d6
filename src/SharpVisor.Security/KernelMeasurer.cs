using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using SharpVisor.Machine.Protection;
using SharpVisor.Memory;

namespace SharpVisor.Security;

/// <summary>
/// Hashes what the lock protected, straight from guest memory: each component's guest-physical
/// ranges in order, each range preceded by its address and length, so moving bytes between
/// ranges changes the digest too.
/// </summary>
public sealed class KernelMeasurer
{
    private readonly GuestMemory _memory;

    public KernelMeasurer(GuestMemory memory, IReadOnlyList<ProtectedRange> text, IReadOnlyList<ProtectedRange> readOnlyData, IReadOnlyList<ProtectedRange> idt, RegisterPins pins)
    {
        _memory = memory;
        TextRanges = text;
        ReadOnlyDataRanges = readOnlyData;
        IdtRanges = idt;
        Pins = pins;
    }

    public IReadOnlyList<ProtectedRange> TextRanges { get; }

    public IReadOnlyList<ProtectedRange> ReadOnlyDataRanges { get; }

    public IReadOnlyList<ProtectedRange> IdtRanges { get; }

    public RegisterPins Pins { get; }

    public Measurement Measure(DateTimeOffset time)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        long bytes = 0;
        string text = Hash(TextRanges, ref bytes);
        string rodata = Hash(ReadOnlyDataRanges, ref bytes);
        string idt = Hash(IdtRanges, ref bytes);
        string registers = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(DescribePins(Pins))));
        string all = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes($"text={text};rodata={rodata};idt={idt};registers={registers}")));
        return new Measurement(time, text, rodata, idt, registers, all, bytes) { Elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started) };
    }

    /// <summary>The pinned registers as text (what the register digest covers).</summary>
    public static string DescribePins(RegisterPins pins) => string.Create(
        CultureInfo.InvariantCulture,
        $"cr0={pins.Cr0Bits:x};cr4={pins.Cr4Bits:x};efer={pins.EferBits:x};lstar={pins.Lstar?.ToString("x", CultureInfo.InvariantCulture) ?? "-"};sysenter_eip={pins.SysenterEip?.ToString("x", CultureInfo.InvariantCulture) ?? "-"}");

    private string Hash(IReadOnlyList<ProtectedRange> ranges, ref long bytes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> header = stackalloc byte[16];
        foreach (ProtectedRange r in ranges)
        {
            BitConverter.TryWriteBytes(header, r.Start);
            BitConverter.TryWriteBytes(header[8..], r.Length);
            hash.AppendData(header);
            for (ulong at = r.Start; at < r.End;)
            {
                int chunk = (int)Math.Min(r.End - at, 1UL << 20);
                if (_memory.TryGetSpan(at, chunk, out Span<byte> span))
                {
                    hash.AppendData(span);
                }
                else
                {
                    hash.AppendData("unbacked"u8); // a range outside RAM hashes as a marker, never a host read
                }

                at += (ulong)chunk;
                bytes += chunk;
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
