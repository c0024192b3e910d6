using SharpVisor.Devices.Pci;
using SharpVisor.Interop;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Pci;

/// <summary>
/// MSI-X over a controller that hands out per-vector routes (KVM's irqfds): each vector asks for
/// one route once and signals through it with its current message; without routes, or when the
/// platform refuses a message, nothing escapes to the caller.
/// </summary>
public sealed class MsixRouteTests
{
    [Fact]
    public void EachVectorSignalsThroughItsOwnRouteWithTheCurrentMessage()
    {
        var controller = new RoutingController();
        var mmio = new MmioBus();
        var bus = new PciBus(mmio, controller);
        var device = new TestPciDevice();
        bus.Attach(device);
        device.WriteConfig(PciConfigSpace.Command, BitConverter.GetBytes((ushort)(PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster)));
        device.WriteConfig(0x42, BitConverter.GetBytes(MsixCapability.ControlEnable));
        Program(mmio, device.MsixBar.Address, 0, 0xFEE0_0000, 0x41);
        Program(mmio, device.MsixBar.Address, 1, 0xFEE0_1000, 0x42);

        device.Msix.Signal(0);
        device.Msix.Signal(1);
        device.Msix.Signal(0);
        Program(mmio, device.MsixBar.Address, 0, 0xFEE0_2000, 0x43); // the guest moves vector 0 (IRQ affinity)
        device.Msix.Signal(0);

        Assert.Equal(2, controller.Routes.Count);
        Assert.Equal([(0xFEE0_0000UL, 0x41u), (0xFEE0_0000UL, 0x41u), (0xFEE0_2000UL, 0x43u)], controller.Routes[0].Signals);
        Assert.Equal([(0xFEE0_1000UL, 0x42u)], controller.Routes[1].Signals);
        Assert.Empty(controller.DirectMessages);
    }

    [Fact]
    public void WithoutARouteTheMessageGoesDirectAndARefusedOneIsLogged()
    {
        var controller = new RoutingController { HasRoutes = false };
        var mmio = new MmioBus();
        var log = new List<string>();
        var bus = new PciBus(mmio, controller) { Log = new GuestLog(log.Add) };
        var device = new TestPciDevice();
        bus.Attach(device);
        device.WriteConfig(PciConfigSpace.Command, BitConverter.GetBytes((ushort)(PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster)));
        device.WriteConfig(0x42, BitConverter.GetBytes(MsixCapability.ControlEnable));
        Program(mmio, device.MsixBar.Address, 0, 0xFEE0_0000, 0x41);

        device.Msix.Signal(0);
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], controller.DirectMessages);

        controller.Refuse = true;
        Assert.True(device.Msix.Signal(0));
        Assert.True(device.Msix.Signal(0));
        Assert.Single(log, l => l.Contains("vector 0") && l.Contains("not delivered")); // said once, not per interrupt
    }

    private static void Program(MmioBus mmio, ulong table, int vector, ulong address, uint data)
    {
        ulong entry = table + (ulong)(vector * 16);
        mmio.Write(entry, BitConverter.GetBytes((uint)address));
        mmio.Write(entry + 4, BitConverter.GetBytes((uint)(address >> 32)));
        mmio.Write(entry + 8, BitConverter.GetBytes(data));
        mmio.Write(entry + 12, BitConverter.GetBytes(0u));
    }

    private sealed class RoutingController : IInterruptController, IMsiRouteProvider
    {
        public bool HasRoutes { get; init; } = true;

        public bool Refuse { get; set; }

        public List<RecordingRoute> Routes { get; } = new();

        public List<(ulong Address, uint Data)> DirectMessages { get; } = new();

        public void SetIrqLevel(uint gsi, bool asserted)
        {
        }

        public void SignalMsi(ulong address, uint data)
        {
            if (Refuse)
            {
                throw new LinuxException("KVM_SIGNAL_MSI", 22);
            }

            DirectMessages.Add((address, data));
        }

        public IMsiRoute? TryCreateMsiRoute()
        {
            if (!HasRoutes)
            {
                return null;
            }

            var route = new RecordingRoute();
            Routes.Add(route);
            return route;
        }
    }

    private sealed class RecordingRoute : IMsiRoute
    {
        public List<(ulong Address, uint Data)> Signals { get; } = new();

        public void Signal(ulong address, uint data) => Signals.Add((address, data));

        public void Dispose()
        {
        }
    }
}
