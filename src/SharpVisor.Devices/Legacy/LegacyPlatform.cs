using SharpVisor.Machine;

namespace SharpVisor.Devices.Legacy;

/// <summary>
/// The PC's legacy I/O devices that SharpVisor provides itself: COM1 (0x3F8, IRQ 4), the
/// i8042 (0x60/0x64, IRQs 1 and 12), QEMU's debug-exit port (0xF4) and the POST-code port
/// (0x80). The PIC, PIT and port 0x61 are not here: the accelerator provides them (KVM's
/// in-kernel irqchip and PIT, or the emulator's own).
/// </summary>
public sealed class LegacyPlatform
{
    private LegacyPlatform(Serial16550 serial, I8042Controller keyboardController, DebugExitDevice debugExit, PostCodePort postCode)
    {
        Serial = serial;
        KeyboardController = keyboardController;
        DebugExit = debugExit;
        PostCode = postCode;
    }

    public Serial16550 Serial { get; }

    public I8042Controller KeyboardController { get; }

    public DebugExitDevice DebugExit { get; }

    public PostCodePort PostCode { get; }

    /// <summary>Creates the standard set and registers it on <paramref name="machine"/>'s port bus.</summary>
    public static LegacyPlatform Register(IVirtualMachine machine, Stream? serialOutput = null)
    {
        ArgumentNullException.ThrowIfNull(machine);
        return Register(machine.PortIo, machine.Interrupts, machine.Control, serialOutput);
    }

    public static LegacyPlatform Register(PortIoBus bus, IInterruptController interrupts, MachineControl control, Stream? serialOutput = null)
    {
        ArgumentNullException.ThrowIfNull(bus);
        ArgumentNullException.ThrowIfNull(interrupts);
        ArgumentNullException.ThrowIfNull(control);

        var serial = new Serial16550(new InterruptLine(interrupts, Serial16550.Com1Irq), serialOutput);
        var keyboardController = new I8042Controller(
            new InterruptLine(interrupts, I8042Controller.KeyboardIrq),
            new InterruptLine(interrupts, I8042Controller.AuxIrq),
            control);
        var debugExit = new DebugExitDevice(control);
        var postCode = new PostCodePort();

        bus.Register(Serial16550.Com1Port, Serial16550.PortCount, serial, "COM1 (16550A)");
        keyboardController.Register(bus);
        bus.Register(DebugExitDevice.DefaultPort, DebugExitDevice.PortCount, debugExit, "debug exit");
        bus.Register(PostCodePort.DefaultPort, 1, postCode, "POST code");
        return new LegacyPlatform(serial, keyboardController, debugExit, postCode);
    }
}
