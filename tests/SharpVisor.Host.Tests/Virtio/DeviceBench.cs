using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>A fake machine with a device manager built from a configuration, and the guest-side PCI driver.</summary>
public sealed class DeviceBench : IDisposable
{
    public const ulong RingBase = 0x10_0000;
    public const ulong RingStride = 0x1_0000;
    public const ulong DataBase = 0x40_0000;

    /// <summary>Builds and starts every device of <paramref name="configuration"/>; with <paramref name="start"/> false, none (the test attaches its own, then starts).</summary>
    public DeviceBench(MachineConfiguration configuration, bool start = true)
    {
        Machine = new FakeMachine(configuration.MemorySize);
        try
        {
            Action<string> log = message =>
            {
                lock (Log)
                {
                    Log.Add(message);
                }
            };
            Devices = start ? PciDeviceManager.Create(Machine, configuration with { Log = log }) : new PciDeviceManager(Machine, log);
        }
        catch
        {
            Machine.Dispose();
            throw;
        }

        Pci = new GuestPciBus(Machine);
    }

    public FakeMachine Machine { get; }

    public PciDeviceManager Devices { get; }

    public GuestPciBus Pci { get; }

    public List<string> Log { get; } = new();

    public static MachineConfiguration Configuration(ulong memory = 64 << 20) =>
        new() { KernelPath = "/unused", MemorySize = memory, EntropyDevice = false };

    public static ulong Data(int page) => DataBase + ((ulong)page * 0x1000);

    public static ulong Ring(int queue) => RingBase + ((ulong)queue * RingStride);

    /// <summary>The guest driver for <paramref name="name"/>'s function, with features negotiated (VERSION_1 plus <paramref name="extraFeatures"/> where offered).</summary>
    public GuestVirtioDevice Driver(string name, ulong extraFeatures = 0)
    {
        AttachedVirtioDevice attached = Devices.Devices.Single(d => d.Name == name);
        var driver = new GuestVirtioDevice(Machine, Pci, attached.Slot);
        ulong offered = driver.ReadDeviceFeatures();
        Assert.True(driver.Negotiate(offered & (GuestVirtioDevice.Version1 | extraFeatures)), $"{name} refused FEATURES_OK");
        return driver;
    }

    public string[] LogLines()
    {
        lock (Log)
        {
            return Log.ToArray();
        }
    }

    public void Dispose()
    {
        Devices.Dispose();
        Machine.Dispose();
    }
}
