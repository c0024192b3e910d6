using System.Runtime.InteropServices;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Kvm;

/// <summary>
/// The in-kernel interrupt controllers (8259 pair, I/O APIC, local APICs) as the machine's
/// interrupt inputs: GSI levels through KVM_IRQ_LINE, MSIs through KVM_SIGNAL_MSI, or — for a
/// device that asks for a route — through an irqfd bound to an MSI routing entry.
/// </summary>
public sealed unsafe class KvmInterruptController : IInterruptController, IMsiRouteProvider
{
    private readonly KvmVirtualMachine _vm;

    internal KvmInterruptController(KvmVirtualMachine vm)
    {
        _vm = vm;
    }

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        var level = new KvmIrqLevel { Irq = gsi, Level = asserted ? 1u : 0u };
        if (LibC.Ioctl(_vm.Fd, KvmIoctls.IrqLine, &level) < 0)
        {
            throw LinuxException.FromLastError($"KVM_IRQ_LINE gsi {gsi}");
        }
    }

    /// <summary>Delivers an MSI. A message the guest has masked or mis-programmed is dropped, as on hardware.</summary>
    public void SignalMsi(ulong address, uint data)
    {
        var msi = new KvmMsi { AddressLo = (uint)address, AddressHi = (uint)(address >> 32), Data = data };

        // > 0: delivered, 0: blocked by the guest (e.g. masked), < 0: error.
        if (LibC.Ioctl(_vm.Fd, KvmIoctls.SignalMsi, &msi) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new LinuxException($"KVM_SIGNAL_MSI address 0x{address:x} data 0x{data:x}", errno);
        }
    }

    /// <summary>An irqfd-backed MSI route, or null when KVM here has no irqfd/GSI routing or no free GSI.</summary>
    public IMsiRoute? TryCreateMsiRoute() => _vm.GsiRouting.TryCreate();
}
