using System.Diagnostics;
using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Tests.Virtio;
using SharpVisor.Devices.Virtio;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// Issue 17, item 1: each log line a guest can trigger, driven a million times. The log stays
/// within the rate limit (a few hundred lines, not millions), a sink that throws — stderr on a
/// full disk, here a real write to /dev/full — costs nothing but the lines, and the device is
/// still usable afterwards.
/// </summary>
public sealed class LogFloodTests
{
    private const int Rounds = 1_000_000;

    public static TheoryData<string> Floods => new() { "features-refused", "fail-and-reset", "bar-outside-window", "balloon-invalid-pfns" };

    [Theory]
    [MemberData(nameof(Floods))]
    public void AMillionGuestTriggeredLinesStayWithinTheRateLimit(string flood)
    {
        var lines = new List<string>();
        long bytes = 0;
        var log = new GuestLog(line =>
        {
            lines.Add(line);
            bytes += line.Length + 1;
        });

        TimeSpan elapsed = Drive(flood, log);

        Assert.True(log.Count >= Rounds, $"{flood}: only {log.Count} lines were offered");
        double allowed = log.Burst + (log.LinesPerSecond * (elapsed.TotalSeconds + 1));
        Assert.True(lines.Count <= 2 * allowed, $"{flood}: {lines.Count} lines written in {elapsed.TotalSeconds:0.0} s (allowed about {allowed:0})");
        Assert.True(bytes < 1 << 20, $"{flood}: {bytes} bytes of log");
        Assert.Equal(log.Count - log.Suppressed, lines.Count(l => !l.StartsWith("log: ", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.Contains("suppressed", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Floods))]
    public void ALogOnAFullDiskCostsTheLinesNotTheDevice(string flood)
    {
        // What Console.Error does when stderr is /dev/full: every write throws IOException.
        var full = new StreamWriter(new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0)) { AutoFlush = true };
        var log = new GuestLog(full.WriteLine);
        try
        {
            Drive(flood, log);
        }
        finally
        {
            try
            {
                full.Dispose();
            }
            catch (IOException)
            {
                // The writer still holds the text /dev/full refused.
            }
        }

        // Every line that passed the rate limit reached the sink and failed there; none escaped.
        Assert.True(log.SinkFailures > 0);
        Assert.True(log.SinkFailures >= log.Count - log.Suppressed);
    }

    private static TimeSpan Drive(string flood, GuestLog log)
    {
        var stopwatch = Stopwatch.StartNew();
        switch (flood)
        {
            case "features-refused":
                FloodRefusedFeatures(log);
                break;
            case "fail-and-reset":
                FloodFailAndReset(log);
                break;
            case "bar-outside-window":
                FloodBarOutsideWindow(log);
                break;
            default:
                FloodInvalidPfns(log);
                break;
        }

        return stopwatch.Elapsed;
    }

    private static void FloodRefusedFeatures(GuestLog log)
    {
        using var rig = new DeviceRig(p => new EchoDevice(p.Memory) { Log = log });
        VirtioPciTestDriver driver = rig.Driver;
        driver.Status = 0;
        driver.Write32(driver.Common + 0x08, 1);
        driver.Write32(driver.Common + 0x0C, 0); // no VERSION_1: refused
        byte featuresOk = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk);
        for (int i = 0; i < Rounds; i++)
        {
            driver.Status = featuresOk;
        }

        Assert.Equal(0, driver.Status & (byte)VirtioDeviceStatus.FeaturesOk);
        AssertStillWorks(rig);
    }

    private static void FloodFailAndReset(GuestLog log)
    {
        using var rig = new DeviceRig(p => new EchoDevice(p.Memory) { Log = log });
        VirtioPciTestDriver driver = rig.Driver;
        byte driverOkOnly = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.DriverOk);
        for (int i = 0; i < Rounds; i++)
        {
            driver.Status = 0;
            driver.Status = driverOkOnly; // DRIVER_OK without FEATURES_OK: the device fails
        }

        Assert.True(rig.Device.NeedsReset);
        AssertStillWorks(rig);
    }

    private static void FloodBarOutsideWindow(GuestLog log)
    {
        using var rig = new DeviceRig(p => new EchoDevice(p.Memory));
        rig.Platform.Pci.Log = log;
        int slot = rig.Driver.Slot;
        ulong home = rig.Driver.BarAddress;
        for (int i = 0; i < Rounds; i++)
        {
            rig.Platform.ConfigWrite32(slot, PciConfigSpace.Bar0, (i & 1) == 0 ? 0x1000_0000u : 0x2000_0000u);
        }

        Assert.Null(rig.Pci.Bar.MappedAddress);
        rig.Platform.ConfigWrite32(slot, PciConfigSpace.Bar0, (uint)home);
        Assert.Equal(home, rig.Pci.Bar.MappedAddress);
        AssertStillWorks(rig);
    }

    private static void FloodInvalidPfns(GuestLog log)
    {
        using var rig = new DeviceRig(p => new VirtioBalloonDevice(p.Memory) { Log = log });
        var balloon = (VirtioBalloonDevice)rig.Device;
        ulong list = DeviceRig.Data(0);
        rig.Platform.Memory.Write(list, 0xFFFF_FFFFu);
        DriverRing inflate = rig.Rings[VirtioBalloonDevice.InflateQueue];
        for (int i = 0; i < Rounds; i++)
        {
            inflate.AddChain((list, 4, false));
            rig.Driver.Notify(VirtioBalloonDevice.InflateQueue);
        }

        Assert.Equal(Rounds, balloon.InvalidPages);
        Assert.Equal(unchecked((ushort)Rounds), inflate.UsedIndex);
        Assert.True(balloon.IsActive);
    }

    /// <summary>After the flood the driver can still bring the device up and use it.</summary>
    private static void AssertStillWorks(DeviceRig rig)
    {
        Assert.True(rig.Driver.Negotiate(rig.Driver.ReadDeviceFeatures()));
        DriverRing ring = rig.Driver.SetupQueue(0, DeviceRig.RingBase, 16);
        rig.Driver.DriverOk();
        Assert.True(rig.Device.IsActive);
        rig.Platform.Memory.Write(DeviceRig.Data(1), 0x1234_5678u);
        ring.AddChain((DeviceRig.Data(1), 4, false), (DeviceRig.Data(2), 4, true));
        rig.Driver.Notify(0);
        Assert.Equal(1, ring.UsedIndex);
    }
}
