using SharpVisor.Devices.Tests.Pci;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>A device on PCI bus 0 with a driver that negotiated its features and set up every queue.</summary>
public sealed class DeviceRig : IDisposable
{
    public const ulong RingBase = 0x10_0000;
    public const ulong RingStride = 0x1_0000;
    public const ulong DataBase = 0x40_0000;

    public DeviceRig(Func<TestPlatform, VirtioDevice> create, ulong featureMask = ulong.MaxValue, ushort queueSize = 16)
    {
        Platform = new TestPlatform(32 << 20);
        Device = create(Platform);
        Pci = new VirtioPciDevice(Device);
        int slot = Platform.Pci.Attach(Pci);
        Driver = new VirtioPciTestDriver(Platform, slot);
        Assert.True(Driver.Negotiate(Driver.ReadDeviceFeatures() & featureMask));
        Rings = new DriverRing[Device.Queues.Count];
        for (int q = 0; q < Rings.Length; q++)
        {
            Rings[q] = Driver.SetupQueue(q, RingBase + ((ulong)q * RingStride), queueSize);
        }

        Driver.DriverOk();
    }

    public TestPlatform Platform { get; }

    public VirtioDevice Device { get; }

    public VirtioPciDevice Pci { get; }

    public VirtioPciTestDriver Driver { get; }

    public DriverRing[] Rings { get; }

    public static ulong Data(int page) => DataBase + ((ulong)page * 0x1000);

    public void Dispose()
    {
        Device.Dispose();
        Platform.Dispose();
    }
}
