using System.Buffers.Binary;
using System.Diagnostics;
using SharpVisor.Devices.Virtio;
using SharpVisor.Memory;
using Xunit.Abstractions;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>
/// Random rings and chains fed to virtio-blk: no exception may escape, the device must end up
/// either healthy or in DEVICE_NEEDS_RESET for a guest-caused reason (never an internal error),
/// the disk image keeps its size, and guest memory sits between guard pages, so a stray host
/// access outside it would fault the test run. By default the run stops after about four
/// seconds (at least 2,000 rings); SHARPVISOR_FUZZ_FULL=1 runs a million rings.
/// </summary>
public sealed class VirtqueueFuzzTests
{
    private const ulong Low = 0x0;
    private const ulong High = 0x2_0000;
    private const int RegionSize = 0x1_0000;
    private const int ImageBytes = 64 * 1024;

    private const int MinimumRings = 2_000;
    private static readonly TimeSpan ReducedRunBudget = TimeSpan.FromSeconds(4);

    private readonly ITestOutputHelper _output;

    public VirtqueueFuzzTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public void RandomRingsNeverCrashTheHostNorEscapeGuestMemory()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int rings = full ? 1_000_000 : 50_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 20240601;
        // tmpfs keeps the flush requests' fsync cheap.
        string directory = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string path = Path.Combine(directory, $"sharpvisor-fuzz-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[ImageBytes]);
        try
        {
            using var memory = new GuestMemory();
            memory.AddRegion(Low, RegionSize);
            memory.AddRegion(High, RegionSize);
            AssertGuardPages(memory);
            using var image = new RawDiskImage(path);
            using var device = new VirtioBlockDevice(memory, image, queueSize: 64);
            var random = new Random(seed);
            var outcomes = new Dictionary<string, int>();
            var stopwatch = Stopwatch.StartNew();
            for (int i = 0; i < rings; i++)
            {
                string outcome = RunOne(memory, device, random);
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                if (!full && i >= MinimumRings && stopwatch.Elapsed > ReducedRunBudget)
                {
                    rings = i + 1;
                    break;
                }
            }

            _output.WriteLine($"{rings} rings in {stopwatch.Elapsed.TotalSeconds:F1} s (seed {seed})");
            foreach ((string outcome, int count) in outcomes.OrderByDescending(o => o.Value).Take(25))
            {
                _output.WriteLine($"{count,8}  {outcome}");
            }

            Assert.Equal(ImageBytes, new FileInfo(path).Length);
            Assert.True(outcomes.GetValueOrDefault("completed") > rings / 100, "too few rings completed: the fuzzer is not reaching the device");
            Assert.True(outcomes.Count > 10, "too few distinct outcomes: the fuzzer is not exploring");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string RunOne(GuestMemory memory, VirtioBlockDevice device, Random r)
    {
        device.Reset();
        ulong features = VirtioFeatures.Version1 | VirtioBlockDevice.FeatureFlush | VirtioBlockDevice.FeatureDiscard | VirtioBlockDevice.FeatureWriteZeroes;
        if (r.Next(4) != 0)
        {
            features |= VirtioFeatures.RingIndirectDesc;
        }

        if (r.Next(2) == 0)
        {
            features |= VirtioFeatures.RingEventIdx;
        }

        device.WriteDriverFeatures(0, (uint)features);
        device.WriteDriverFeatures(1, (uint)(features >> 32));
        device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk));

        ushort size = (ushort)(1 << r.Next(0, 7));
        Virtqueue q = device.Queues[0];
        q.Size = r.Next(50) == 0 ? (ushort)r.Next(0, 100) : size;
        ulong region = r.Next(2) == 0 ? Low : High;
        ulong desc = region + (ulong)(r.Next(0, 0x100) * 16);
        ulong avail = desc + (16UL * size) + (ulong)(r.Next(0, 8) * 2);
        ulong used = (avail + 6 + (2UL * size) + 3 + (ulong)(r.Next(0, 8) * 4)) & ~3UL;
        q.DescriptorTableAddress = r.Next(40) == 0 ? RandomAddress(r) : desc;
        q.DriverAreaAddress = avail;
        q.DeviceAreaAddress = r.Next(40) == 0 ? RandomAddress(r) | 2 : used;
        device.EnableQueue(0);
        if (device.NeedsReset)
        {
            return Classify(device);
        }

        for (int d = 0; d < size; d++)
        {
            WriteRandomDescriptor(memory, r, desc + (16UL * (ulong)d), size);
        }

        ushort pending = (ushort)(r.Next(20) == 0 ? r.Next(0, 65536) : r.Next(0, size + 1));
        memory.Write(avail, (ushort)r.Next(0, 2));
        memory.Write(avail + 2, pending);
        for (int a = 0; a < size; a++)
        {
            memory.Write(avail + 4 + (2UL * (ulong)a), (ushort)(r.Next(10) == 0 ? r.Next(0, 65536) : r.Next(0, size)));
        }

        memory.Write(avail + 4 + (2UL * size), (ushort)r.Next(0, 65536));
        device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk));
        device.Notify(0);
        return Classify(device);
    }

    private static string Classify(VirtioDevice device)
    {
        if (!device.NeedsReset)
        {
            return "completed";
        }

        string reason = device.FailureReason!;
        Assert.DoesNotContain("internal error", reason);
        return new string(reason.TakeWhile(c => !char.IsDigit(c)).ToArray()).Trim();
    }

    private static void WriteRandomDescriptor(GuestMemory memory, Random r, ulong at, ushort size)
    {
        ulong address = r.Next(8) switch
        {
            0 => RandomAddress(r),
            1 => Low + RegionSize - (ulong)r.Next(0, 64),
            2 => High + RegionSize - (ulong)r.Next(0, 64),
            _ => (r.Next(2) == 0 ? Low : High) + (ulong)r.Next(0, RegionSize),
        };
        uint length = r.Next(8) switch
        {
            0 => (uint)r.NextInt64(0, 1L << 32),
            1 => 16,
            2 => 1,
            3 => (uint)(512 * r.Next(1, 4)),
            _ => (uint)r.Next(0, 2048),
        };
        ushort flags = (ushort)(r.Next(4) switch
        {
            0 => r.Next(0, 65536),
            _ => (r.Next(3) == 0 ? DescriptorChain.FlagNext : 0) | (r.Next(2) == 0 ? DescriptorChain.FlagWrite : 0) | (r.Next(6) == 0 ? DescriptorChain.FlagIndirect : 0),
        });
        ushort next = (ushort)(r.Next(10) == 0 ? r.Next(0, 65536) : r.Next(0, size));
        Span<byte> d = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(d, address);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
        memory.Write(at, d);

        // Give the buffer plausible contents: a request header or an indirect table.
        if (memory.IsValid(address, 16) && r.Next(2) == 0)
        {
            if ((flags & DescriptorChain.FlagIndirect) != 0)
            {
                for (uint e = 0; e < Math.Min(length / 16, 8) && memory.IsValid(address + (16 * e), 16); e++)
                {
                    WriteRandomDescriptor(memory, r, address + (16 * e), (ushort)Math.Max(1, length / 16));
                }
            }
            else
            {
                uint[] types = [0, 1, 4, 8, 11, 13, (uint)r.Next()];
                memory.Write(address, types[r.Next(types.Length)]);
                memory.Write(address + 8, (ulong)(r.Next(4) == 0 ? r.NextInt64() : r.Next(0, 140)));
            }
        }
    }

    private static ulong RandomAddress(Random r) => r.Next(3) switch
    {
        0 => (ulong)r.NextInt64(),
        1 => ulong.MaxValue - (ulong)r.Next(0, 4096),
        _ => (ulong)r.Next(0, 0x4_0000),
    };

    /// <summary>Checks /proc/self/maps: each region's host mapping has an inaccessible page on both sides.</summary>
    private static void AssertGuardPages(GuestMemory memory)
    {
        string[] maps = File.ReadAllLines("/proc/self/maps");
        foreach (MemoryRegion region in memory.Regions)
        {
            ulong start = (ulong)region.HostAddress;
            ulong end = start + region.Size;
            Assert.Contains(maps, l => Covers(l, start - MemoryRegion.GuardSize) && l.Contains(" ---p "));
            Assert.Contains(maps, l => Covers(l, end) && l.Contains(" ---p "));
        }

        static bool Covers(string line, ulong address)
        {
            string[] range = line.Split(' ')[0].Split('-');
            return Convert.ToUInt64(range[0], 16) <= address && address < Convert.ToUInt64(range[1], 16);
        }
    }
}
