using System.Buffers.Binary;
using System.Diagnostics;
using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Tests.Pci;
using SharpVisor.Devices.Tests.Virtio;
using SharpVisor.Devices.Virtio;
using SharpVisor.Machine;
using Xunit.Abstractions;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// Issue 17, item 2: two "vCPUs" write random values to every register of every virtio
/// device at once — common configuration, ISR, device configuration, notifications, the MSI-X
/// table, PCI configuration space (and through it the virtio-pci configuration window) —
/// while each device's worker serves the queues and a third thread plays the balloon
/// statistics timer and console input. Guest memory sits between guard pages, so a host access
/// outside it faults the run. Afterwards no exception has escaped a register access, no device
/// failed for an internal reason, and every enabled queue's rings lie inside guest memory for
/// the size they have. 10,000 operations by default; SHARPVISOR_FUZZ_FULL=1 runs 1,000,000
/// (scripts/fuzz.sh).
/// </summary>
public sealed class RegisterFuzzTests
{
    private const ulong RamSize = 4 << 20;

    private readonly ITestOutputHelper _output;

    public RegisterFuzzTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public void ConcurrentRandomRegisterWritesFromTwoVcpusNeverEscape()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int operations = full ? 1_000_000 : 10_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_SEED"), out int s) ? s : 20261207;
        string directory = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string imagePath = Path.Combine(directory, $"sharpvisor-regfuzz-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(imagePath, new byte[64 * 1024]);
        var log = new GuestLog(null);
        using var platform = new TestPlatform(RamSize);
        using var image = new RawDiskImage(imagePath);
        var balloon = new VirtioBalloonDevice(platform.Memory, queueSize: 64);
        var console = new VirtioConsoleDevice(platform.Memory, Stream.Null);
        VirtioDevice[] devices =
        [
            new VirtioBlockDevice(platform.Memory, image, queueSize: 64),
            balloon,
            console,
            new VirtioRngDevice(platform.Memory),
            new EchoDevice(platform.Memory),
        ];
        var transports = new List<VirtioPciDevice>();
        try
        {
            foreach (VirtioDevice device in devices)
            {
                device.Log = log;
                var transport = new VirtioPciDevice(device);
                platform.Pci.Attach(transport);
                transport.WriteConfig(PciConfigSpace.Command, BitConverter.GetBytes((ushort)(PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster)));
                transports.Add(transport);
                device.StartWorker();
            }

            var escaped = new List<Exception>();
            long activeSamples = 0;
            long liveQueueSamples = 0;
            using var stop = new CancellationTokenSource();
            var stopwatch = Stopwatch.StartNew();
            Thread[] vcpus = Enumerable.Range(0, 2).Select(v => new Thread(() =>
            {
                var random = new Random(seed + v);
                int[] steps = new int[transports.Count];
                try
                {
                    for (int i = 0; i < operations / 2; i++)
                    {
                        int d = random.Next(transports.Count);
                        VirtioPciDevice transport = transports[d];
                        if (random.Next(2) == 0)
                        {
                            DriverStep(random, platform, transport, ref steps[d]);
                        }
                        else
                        {
                            Operate(random, platform, transport);
                        }

                        if (transport.Device.IsActive)
                        {
                            Interlocked.Increment(ref activeSamples);
                            if (transport.Device.Queues.Any(q => q.Enabled))
                            {
                                Interlocked.Increment(ref liveQueueSamples);
                            }
                        }
                    }
                }
                catch (Exception e)
                {
                    lock (escaped)
                    {
                        escaped.Add(e);
                    }
                }
            }) { Name = $"fuzz-vcpu{v}" }).ToArray();
            var host = new Thread(() =>
            {
                try
                {
                    while (!stop.IsCancellationRequested)
                    {
                        balloon.RequestStatistics();
                        console.EnqueueInput("x"u8);
                        Thread.Yield();
                    }
                }
                catch (Exception e)
                {
                    lock (escaped)
                    {
                        escaped.Add(e);
                    }
                }
            }) { Name = "fuzz-host" };

            host.Start();
            foreach (Thread t in vcpus)
            {
                t.Start();
            }

            foreach (Thread t in vcpus)
            {
                t.Join();
            }

            stop.Cancel();
            host.Join();

            _output.WriteLine($"{operations} operations in {stopwatch.Elapsed.TotalSeconds:F1} s (seed {seed}); {log.Count} guest log lines; " +
                $"device active after {activeSamples} operations, with a live queue after {liveQueueSamples}");
            foreach (VirtioDevice device in devices)
            {
                _output.WriteLine($"{device.Name}: status 0x{(byte)device.Status:x2} {device.FailureReason}");
            }

            Assert.Empty(escaped);
            Assert.True(liveQueueSamples > operations / 50, "the fuzzer rarely reaches a running device with a live queue");
            foreach (VirtioDevice device in devices)
            {
                string reason = device.FailureReason ?? "";
                Assert.False(reason.StartsWith("internal error", StringComparison.Ordinal) || reason.StartsWith("worker:", StringComparison.Ordinal), $"{device.Name}: {reason}");
                foreach (Virtqueue q in device.Queues.Where(q => q.Enabled))
                {
                    Assert.True(platform.Memory.IsValid(q.DescriptorTableAddress, Virtqueue.DescriptorTableBytes(q.Size)), $"{device.Name} queue {q.Index}: descriptor table outside memory for size {q.Size}");
                    Assert.True(platform.Memory.IsValid(q.DriverAreaAddress, Virtqueue.DriverAreaBytes(q.Size)), $"{device.Name} queue {q.Index}: driver area outside memory for size {q.Size}");
                    Assert.True(platform.Memory.IsValid(q.DeviceAreaAddress, Virtqueue.DeviceAreaBytes(q.Size)), $"{device.Name} queue {q.Index}: device area outside memory for size {q.Size}");
                }
            }
        }
        finally
        {
            foreach (VirtioDevice device in devices)
            {
                device.Dispose();
            }

            File.Delete(imagePath);
        }
    }

    private static void Operate(Random random, TestPlatform platform, VirtioPciDevice transport)
    {
        int kind = random.Next(100);
        if (kind < 55)
        {
            WriteCommonConfig(random, transport);
        }
        else if (kind < 65)
        {
            // Reads: ISR (clears it), common configuration, device configuration, MSI-X.
            ulong offset = random.Next(4) switch
            {
                0 => VirtioPciDevice.IsrOffset,
                1 => (ulong)random.Next(VirtioPciDevice.CommonConfigLength),
                2 => VirtioPciDevice.DeviceConfigOffset + (ulong)random.Next(64),
                _ => VirtioPciDevice.MsixTableOffset + (ulong)random.Next(0x100),
            };
            Span<byte> data = stackalloc byte[Size(random)];
            transport.ReadBar(0, offset, data);
        }
        else if (kind < 75)
        {
            transport.WriteBar(0, VirtioPciDevice.NotifyOffset + (ulong)(4 * random.Next(transport.Device.Queues.Count + 1)), [0, 0]);
        }
        else if (kind < 80)
        {
            transport.WriteBar(0, VirtioPciDevice.DeviceConfigOffset + (ulong)random.Next(64), Value(random, Size(random)));
        }
        else if (kind < 85)
        {
            transport.WriteBar(0, VirtioPciDevice.MsixTableOffset + (ulong)random.Next(0x80), Value(random, Size(random)));
        }
        else if (kind < 90)
        {
            // Configuration space: anywhere except moving BAR0 away (it would only make the MMIO bus miss).
            int register = random.Next(PciConfigSpace.Size);
            if (register is >= PciConfigSpace.Bar0 and < PciConfigSpace.Bar0 + 8)
            {
                register = PciConfigSpace.Command;
            }

            int size = Size(random);
            transport.WriteConfig(register - (register % size), Value(random, size));
            Span<byte> back = stackalloc byte[4];
            transport.ReadConfig(random.Next(PciConfigSpace.Size - 4), back);
        }
        else
        {
            // The "guest" scribbles on its own memory: ring indexes, descriptors.
            ulong address = (ulong)random.NextInt64((long)RamSize - 8) & ~1UL;
            platform.Memory.Write(address, (ushort)random.Next(0x10000));
        }
    }

    /// <summary>
    /// The next step of a well-behaved driver bringing the device up (reset, negotiate, set up a
    /// queue, DRIVER_OK, post buffers), so the random writes of the other vCPU land on a device
    /// that is running rather than one that never got past its reset.
    /// </summary>
    private static void DriverStep(Random random, TestPlatform platform, VirtioPciDevice transport, ref int step)
    {
        int queues = transport.Device.Queues.Count;
        ushort queue = (ushort)random.Next(queues);
        switch (step)
        {
            case 0:
                Write(transport, 0x14, 1, 0);
                break;
            case 1:
                Write(transport, 0x14, 1, 3);
                break;
            case 2:
                Write(transport, 0x08, 4, 1);
                Write(transport, 0x0C, 4, 1); // VERSION_1
                Write(transport, 0x08, 4, 0);
                Write(transport, 0x0C, 4, transport.Device.ReadDeviceFeatures(0) & (uint)random.NextInt64(0x1_0000_0000));
                break;
            case 3:
                Write(transport, 0x14, 1, 0xB);
                break;
            case < 4 + 8:
                // Set up every queue (repeatedly), each in its own 64 KiB of RAM.
                ushort size = (ushort)Math.Min(transport.Device.Queues[queue].MaxSize, 1 << random.Next(1, 9));
                ulong ring = 0x10_0000 + ((ulong)(step % queues) * 0x1_0000);
                queue = (ushort)(step % queues);
                Write(transport, 0x16, 2, queue);
                Write(transport, 0x18, 2, size);
                Write(transport, 0x20, 8, ring);
                Write(transport, 0x28, 8, ring + (16UL * size));
                Write(transport, 0x30, 8, (ring + (16UL * size) + 6 + (2UL * size) + 3) & ~3UL);
                Write(transport, 0x1C, 2, 1);
                break;
            case 12:
                Write(transport, 0x14, 1, 0xF);
                break;
            default:
                // Post "buffers": bump the available index of a queue and ring its doorbell.
                ulong avail = transport.Device.Queues[queue].DriverAreaAddress;
                if (platform.Memory.IsValid(avail, 4))
                {
                    platform.Memory.Write(avail + 2, (ushort)(platform.Memory.Read<ushort>(avail + 2) + 1));
                }

                transport.WriteBar(0, VirtioPciDevice.NotifyOffset + (4UL * queue), [0, 0]);
                if (!transport.Device.IsActive || random.Next(200) == 0)
                {
                    step = -1;
                }

                break;
        }

        step++;
    }

    private static void Write(VirtioPciDevice transport, int offset, int size, ulong value)
    {
        Span<byte> data = stackalloc byte[size];
        for (int i = 0; i < size; i++)
        {
            data[i] = (byte)(value >> (8 * i));
        }

        transport.WriteBar(0, (ulong)offset, data);
    }

    private static void WriteCommonConfig(Random random, VirtioPciDevice transport)
    {
        int queues = transport.Device.Queues.Count;
        (int offset, int size, ulong value) = random.Next(12) switch
        {
            0 => (0x14, 1, (ulong)Pick(random, [0, 1, 3, 0xB, 0xF, 0x4F, random.Next(256)])),
            1 => (0x16, 2, (ulong)random.Next(queues + 1)),
            2 => (0x18, 2, (ulong)Pick(random, [1, 2, 16, 64, 256, 1024, 32768, random.Next(0x10000)])),
            3 => (0x1C, 2, 1UL),
            4 => (0x20, 8, RingAddress(random)),
            5 => (0x28, 8, RingAddress(random)),
            6 => (0x30, 8, RingAddress(random)),
            7 => (0x20 + (8 * random.Next(3)) + (4 * random.Next(2)), 4, RingAddress(random) & 0xFFFF_FFFF),
            8 => (0x1A, 2, (ulong)random.Next(8)),
            9 => (0x08, 4, (ulong)random.Next(3)),
            10 => (0x0C, 4, random.Next(2) == 0 ? 1UL : (ulong)random.NextInt64(0x1_0000_0000)),
            _ => (random.Next(VirtioPciDevice.CommonConfigLength), Size(random), (ulong)random.NextInt64()),
        };
        byte[] data = new byte[size];
        for (int i = 0; i < size; i++)
        {
            data[i] = (byte)(value >> (8 * i));
        }

        transport.WriteBar(0, (ulong)offset, data);
    }

    /// <summary>Mostly plausible ring addresses inside RAM, sometimes right at its end or far outside.</summary>
    private static ulong RingAddress(Random random) => random.Next(10) switch
    {
        < 7 => (ulong)random.Next((int)(RamSize >> 4)) << 4,
        7 => RamSize - (16UL * (ulong)random.Next(1, 64)),
        8 => 0xFEE0_0000,
        _ => (ulong)random.NextInt64() & ~0xFUL,
    };

    private static int Size(Random random) => 1 << random.Next(3);

    private static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];

    private static byte[] Value(Random random, int size)
    {
        byte[] data = new byte[size];
        random.NextBytes(data);
        return data;
    }
}
