using static SharpVisor.Devices.Legacy.Serial16550;

namespace SharpVisor.Devices.Tests.Legacy;

/// <summary>The UART as Linux's 8250 driver sees it, replayed register by register.</summary>
public sealed class Linux8250DriverTests
{
    [Fact]
    public void AutoconfigIdentifiesA16550AWithA16ByteFifoAndRestoresTheUart()
    {
        var h = new UartHarness();
        var driver = new Linux8250Driver(h);

        Assert.Equal("16550A fifo=16", driver.Autoconfig());

        Assert.Equal(0, h.In(InterruptEnableRegister));
        Assert.Equal(McrOut2, h.In(ModemControlRegister));
        Assert.Equal(0, h.In(LineControlRegister));
        Assert.Equal(0, h.Lsr & LsrDataReady);
        h.Out(LineControlRegister, LcrDivisorLatchAccess);
        Assert.Equal(0x0C, h.In(DataRegister)); // size_fifo put the divisor back
        Assert.Equal(0, h.Output.Length); // the probe's loopback bytes never left the UART
    }

    [Fact]
    public void StartupFindsNoThreOrTxenBugs()
    {
        var h = new UartHarness();
        var driver = new Linux8250Driver(h);
        driver.Autoconfig();

        driver.Startup();

        Assert.False(driver.BugThre, "THRE was not re-asserted after IER.THRI was toggled");
        Assert.False(driver.BugTxen, "enabling IER.THRI with THR empty raised no interrupt");
    }

    [Fact]
    public void InterruptDrivenTransmitAndReceiveLoseNothingOnAnEdgeTriggeredLine()
    {
        var h = new UartHarness();
        var driver = new Linux8250Driver(h);
        driver.Autoconfig();
        driver.Startup();
        string banner = "Welcome to SharpVisor!\r\nlogin: " + new string('.', 100) + "\r\n";

        driver.Write(banner);
        driver.ServiceInterrupts();

        Assert.Equal(banner, System.Text.Encoding.ASCII.GetString(((MemoryStream)h.Output).ToArray()));
        Assert.Equal(0, driver.PendingTransmit);
        Assert.False(h.Line); // TX stopped, nothing pending: ready for the next edge

        // Typed and pasted input: each arrival is a fresh edge the handler drains completely.
        h.Input("r");
        driver.ServiceInterrupts();
        h.Input("oot\r");
        driver.ServiceInterrupts();
        string paste = new string('p', 300);
        h.Input(paste);
        driver.ServiceInterrupts();

        Assert.Equal("root\r" + paste, driver.Received.ToString());
        Assert.False(h.Line);

        // Output and input interleaved inside one interrupt.
        driver.Write("# ");
        h.Input("ls\r");
        driver.ServiceInterrupts();
        Assert.EndsWith("ls\r", driver.Received.ToString());
        Assert.EndsWith("# ", System.Text.Encoding.ASCII.GetString(((MemoryStream)h.Output).ToArray()));
        Assert.False(h.Line);
    }
}
