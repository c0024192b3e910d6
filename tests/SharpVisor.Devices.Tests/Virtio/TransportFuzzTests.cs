using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Tests.Pci;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>
/// A hostile driver poking registers: random configuration cycles, random BAR0 reads and writes of
/// every width (common configuration, ISR, device configuration, notify, MSI-X) on devices of every
/// type. No access may throw into the vCPU loop, and the devices stay servable afterwards.
/// </summary>
public sealed class TransportFuzzTests
{
    [Fact]
    public void RandomRegisterAccessesNeverThrow()
    {
        bool full = Environment.GetEnvironmentVariable("SHARPVISOR_FUZZ_FULL") == "1";
        int accesses = full ? 2_000_000 : 100_000;
        string image = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"sharpvisor-tfuzz-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(image, new byte[64 * 1024]);
        try
        {
            using var p = new TestPlatform(8 << 20);
            using var disk = new RawDiskImage(image);
            VirtioDevice[] devices =
            [
                new VirtioBlockDevice(p.Memory, disk, queueSize: 16),
                new VirtioRngDevice(p.Memory, 16),
                new VirtioConsoleDevice(p.Memory, Stream.Null, 16),
                new VirtioBalloonDevice(p.Memory, 16),
            ];
            var slots = devices.Select(d => p.Pci.Attach(new VirtioPciDevice(d))).ToArray();
            foreach (int slot in slots)
            {
                p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster);
            }

            var r = new Random(7);
            Span<byte> buffer = stackalloc byte[8];
            int[] widths = [1, 2, 4, 8];
            int liveSamples = 0;
            for (int i = 0; i < accesses; i++)
            {
                if (i % 1000 == 0 && devices.Any(d => d.Status != VirtioDeviceStatus.None))
                {
                    liveSamples++;
                }

                int slot = slots[r.Next(slots.Length)];
                var pci = (VirtioPciDevice)p.Pci.GetDevice(slot)!;
                int width = widths[r.Next(widths.Length)];
                Span<byte> data = buffer[..width];
                r.NextBytes(data);
                switch (r.Next(10))
                {
                    case 0:
                        // Configuration space, sparing the command register and BAR0 most of the time
                        // so that the BAR keeps decoding and the MMIO accesses below reach the device.
                        int register = r.Next(256) & ~(Math.Min(width, 4) - 1);
                        if ((register is >= 0x04 and < 0x08 or >= 0x10 and < 0x18) && r.Next(20) != 0)
                        {
                            break;
                        }

                        p.PortIo.Write(0xCF8, BitConverter.GetBytes(0x8000_0000u | ((uint)slot << 11) | (uint)(register & 0xFC)));
                        ushort port = (ushort)(0xCFC + (register & 3));
                        if (r.Next(2) == 0)
                        {
                            p.PortIo.Write(port, data[..Math.Min(width, 4 - (register & 3))]);
                        }
                        else
                        {
                            p.PortIo.Read(port, data[..Math.Min(width, 4 - (register & 3))]);
                        }

                        break;
                    default:
                        if (pci.Bar.MappedAddress is not ulong bar)
                        {
                            p.ConfigWrite32(slot, 0x10, (uint)pci.Bar.Address | 4);
                            p.ConfigWrite32(slot, 0x14, (uint)(pci.Bar.Address >> 32));
                            p.ConfigWrite16(slot, PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster);
                            break;
                        }

                        // Mostly the interesting pages (common, ISR, device, notify, MSI-X), sometimes anywhere.
                        ulong offset = r.Next(4) == 0 ? (ulong)r.Next((int)VirtioPciDevice.BarSize) : ((ulong)r.Next(6) << 12) + (ulong)r.Next(0x40);
                        offset &= ~(ulong)(width - 1);
                        if (r.Next(2) == 0)
                        {
                            p.Mmio.Write(bar + offset, data);
                        }
                        else
                        {
                            p.Mmio.Read(bar + offset, data);
                        }

                        break;
                }
            }

            Assert.True(liveSamples > accesses / 1000 / 4, $"the random accesses rarely reached device status ({liveSamples} samples)");

            // Whatever state the devices were left in, a reset and a clean set-up still work.
            var rng = (VirtioPciDevice)p.Pci.GetDevice(slots[1])!;
            p.ConfigWrite16(slots[1], PciConfigSpace.Command, PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster);
            p.ConfigWrite32(slots[1], 0x10, 0xD000_0004);
            p.ConfigWrite32(slots[1], 0x14, 0);
            var driver = new VirtioPciTestDriver(p, slots[1]);
            Assert.True(driver.Negotiate(VirtioFeatures.Version1));
            DriverRing ring = driver.SetupQueue(0, 0x10_0000, 16);
            driver.DriverOk();
            ring.AddChain((0x20_0000, 32, true));
            driver.Notify(0);
            Assert.Equal(1, ring.UsedIndex);
            Assert.False(rng.Device.NeedsReset);

            foreach (VirtioDevice d in devices)
            {
                d.Dispose();
            }
        }
        finally
        {
            File.Delete(image);
        }
    }
}
