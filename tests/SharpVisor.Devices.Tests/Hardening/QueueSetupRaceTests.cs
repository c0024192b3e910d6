using SharpVisor.Devices.Tests.Virtio;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// Issue 17, item 2, the instance the audit found: one vCPU enables a queue whose rings fit
/// guest memory for a small size while another writes a large queue_size. Whichever wins, an
/// enabled queue's rings were validated for the size it has; a size written after enabling is
/// ignored.
/// </summary>
public sealed class QueueSetupRaceTests
{
    private const int Rounds = 5_000;

    [Fact]
    public void ASizeWrittenDuringEnableNeverLeavesAnUncheckedLiveQueue()
    {
        using var rig = new DeviceRig(p => new EchoDevice(p.Memory, queueSize: 256));
        VirtioPciTestDriver driver = rig.Driver;
        ulong ramEnd = 32 << 20;

        // Rings for two entries packed against the end of RAM: valid for size 2, not for 256.
        ulong used = ramEnd - Virtqueue.DeviceAreaBytes(2) - 2;
        ulong avail = used - 64;
        ulong descriptors = (avail - 64) & ~15UL;
        using var start = new Barrier(2);
        var random = new Random(17);
        // The enabling thread leaves the barrier first; a wide spread of delays lets either win.
        int[] spins = Enumerable.Range(0, Rounds * 2).Select(i => random.Next(i % 2 == 0 ? 40_000 : 4_000)).ToArray();
        int bigWon = 0;
        int smallWon = 0;

        var other = new Thread(() =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                start.SignalAndWait();
                Thread.SpinWait(spins[(2 * i) + 1]);
                for (int w = 0; w < 32; w++)
                {
                    // A stream of writes, so enabling often lands inside one of them.
                    driver.Write16(driver.Common + 0x18, 256);
                }

                start.SignalAndWait();
            }
        });
        other.Start();

        for (int i = 0; i < Rounds; i++)
        {
            driver.Status = 0;
            Assert.True(driver.Negotiate(driver.ReadDeviceFeatures()));
            driver.Write16(driver.Common + 0x16, 0);
            driver.Write16(driver.Common + 0x18, 2);
            driver.Write64(driver.Common + 0x20, descriptors);
            driver.Write64(driver.Common + 0x28, avail);
            driver.Write64(driver.Common + 0x30, used);
            start.SignalAndWait();
            Thread.SpinWait(spins[2 * i]);
            driver.Write16(driver.Common + 0x1C, 1);
            start.SignalAndWait();

            Virtqueue q = rig.Device.Queues[0];
            if (q.Enabled)
            {
                Assert.Equal(2, q.Size);
                Assert.True(rig.Platform.Memory.IsValid(q.DeviceAreaAddress, Virtqueue.DeviceAreaBytes(q.Size)));
                smallWon++;
            }
            else
            {
                // The large size came first: enabling failed the device, as it should.
                Assert.Equal(256, q.Size);
                Assert.True(rig.Device.NeedsReset);
                bigWon++;
            }
        }

        other.Join();
        Assert.True(smallWon > 0 && bigWon > 0, $"small size won {smallWon}, large {bigWon}: the threads are not racing");
    }
}
