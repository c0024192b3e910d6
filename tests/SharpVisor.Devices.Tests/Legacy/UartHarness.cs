using SharpVisor.Devices.Legacy;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Legacy;

/// <summary>A UART on COM1's IRQ with a recording interrupt controller, driven as a guest would.</summary>
internal sealed class UartHarness
{
    public UartHarness(Stream? output = null, int inputQueueCapacity = Serial16550.DefaultInputQueueCapacity)
    {
        Output = output ?? new MemoryStream();
        Uart = new Serial16550(new InterruptLine(Interrupts, Serial16550.Com1Irq), Output, inputQueueCapacity);
    }

    public RecordingInterruptController Interrupts { get; } = new();

    public Serial16550 Uart { get; }

    public Stream Output { get; }

    public bool Line => Interrupts.Level(Serial16550.Com1Irq);

    public int RisingEdges => Interrupts.RisingEdges(Serial16550.Com1Irq);

    public byte In(int register)
    {
        Span<byte> data = stackalloc byte[1];
        Uart.Read((ushort)register, data);
        return data[0];
    }

    public void Out(int register, byte value) => Uart.Write((ushort)register, [value]);

    public byte Lsr => In(Serial16550.LineStatusRegister);

    public byte Iir => In(Serial16550.InterruptIdentificationRegister);

    public void Input(string text) => Uart.EnqueueInput(System.Text.Encoding.ASCII.GetBytes(text));
}
