using System.Text;
using static SharpVisor.Devices.Legacy.Serial16550;

namespace SharpVisor.Devices.Tests.Legacy;

/// <summary>
/// The register sequences of Linux's 8250 driver (drivers/tty/serial/8250/8250_port.c:
/// autoconfig, autoconfig_16550a, size_fifo, serial8250_do_startup, the interrupt handler
/// and start/stop_tx), replayed against a UART so tests can check that the driver would
/// identify and use it as a working 16550A.
/// </summary>
internal sealed class Linux8250Driver
{
    private const byte UartFcr7_64Byte = 0x20;
    private const byte UartIerUue = 0x40;
    private const byte LcrConfModeA = 0x80;
    private const byte LcrConfModeB = 0xBF;
    private const byte LcrWlen8 = 0x03;
    private const int TxLoadSize = 16;

    private readonly UartHarness _h;
    private readonly Queue<byte> _transmitQueue = new();
    private byte _ier;
    private int _servicedEdges;

    public Linux8250Driver(UartHarness harness) => _h = harness;

    public StringBuilder Received { get; } = new();

    public bool BugThre { get; private set; }

    public bool BugTxen { get; private set; }

    public int InterruptsHandled { get; private set; }

    /// <summary>autoconfig(): returns the port type Linux would print, or why it gave up.</summary>
    public string Autoconfig()
    {
        byte scratch = _h.In(InterruptEnableRegister);
        _h.Out(InterruptEnableRegister, 0);
        int scratch2 = _h.In(InterruptEnableRegister) & 0x0F;
        _h.Out(InterruptEnableRegister, 0x0F);
        int scratch3 = _h.In(InterruptEnableRegister) & 0x0F;
        _h.Out(InterruptEnableRegister, scratch);
        if (scratch2 != 0 || scratch3 != 0x0F)
        {
            return $"IER test failed ({scratch2:x2}, {scratch3:x2})";
        }

        byte saveMcr = _h.In(ModemControlRegister);
        byte saveLcr = _h.In(LineControlRegister);

        // The loopback test (skipped for COM1-4 by UPF_SKIP_TEST, done here anyway).
        _h.Out(ModemControlRegister, McrLoopback | 0x0A);
        int status1 = _h.In(ModemStatusRegister) & 0xF0;
        _h.Out(ModemControlRegister, saveMcr);
        if (status1 != 0x90)
        {
            return $"LOOP test failed ({status1:x2})";
        }

        _h.Out(LineControlRegister, LcrConfModeB);
        _h.Out(2, 0); // EFR
        _h.Out(LineControlRegister, 0);
        _h.Out(FifoControlRegister, FcrEnable);
        string type = (_h.In(InterruptIdentificationRegister) >> 6) switch
        {
            0 => "8250/16450",
            1 => "unknown",
            2 => "16550",
            _ => Autoconfig16550A(),
        };

        _h.Out(LineControlRegister, saveLcr);

        // Reset the UART.
        _h.Out(ModemControlRegister, saveMcr);
        ClearFifos();
        _h.In(DataRegister);
        _h.Out(InterruptEnableRegister, 0);
        return type;
    }

    /// <summary>serial8250_do_startup() for a port with an IRQ, then set_termios' FIFO and IER setup.</summary>
    public void Startup()
    {
        ClearFifos();
        _h.In(LineStatusRegister);
        _h.In(DataRegister);
        _h.In(InterruptIdentificationRegister);
        _h.In(ModemStatusRegister);
        Assert.NotEqual(0xFF, _h.In(LineStatusRegister)); // "LSR safety check"

        // Does THRE re-assert once the interrupt was cleared?
        Assert.NotEqual(0, _h.In(LineStatusRegister) & LsrTransmitterHoldingEmpty);
        _h.Out(InterruptEnableRegister, IerTransmitterEmpty);
        byte iir1 = _h.In(InterruptIdentificationRegister);
        _h.Out(InterruptEnableRegister, 0);
        _h.Out(InterruptEnableRegister, IerTransmitterEmpty);
        byte iir = _h.In(InterruptIdentificationRegister);
        _h.Out(InterruptEnableRegister, 0);
        BugThre = (iir1 & IirNoInterrupt) == 0 && (iir & IirNoInterrupt) != 0;

        _h.Out(LineControlRegister, LcrWlen8);
        _h.Out(ModemControlRegister, McrOut2 | McrDtr | McrRts);

        // Is a TX interrupt raised when it is enabled?
        _h.Out(InterruptEnableRegister, IerTransmitterEmpty);
        byte lsr = _h.In(LineStatusRegister);
        iir = _h.In(InterruptIdentificationRegister);
        _h.Out(InterruptEnableRegister, 0);
        BugTxen = (lsr & LsrTransmitterEmpty) != 0 && (iir & IirNoInterrupt) != 0;

        _h.In(LineStatusRegister);
        _h.In(DataRegister);
        _h.In(InterruptIdentificationRegister);
        _h.In(ModemStatusRegister);

        // set_termios: 115200 8N1, FIFOs with the 8-byte trigger, receive interrupts on.
        _h.Out(LineControlRegister, LcrConfModeA | LcrWlen8);
        _h.Out(DataRegister, 1);
        _h.Out(InterruptEnableRegister, 0);
        _h.Out(LineControlRegister, LcrWlen8);
        _h.Out(FifoControlRegister, FcrEnable | 0x80);
        _ier = IerReceiverLineStatus | IerReceivedData;
        _h.Out(InterruptEnableRegister, _ier);
    }

    /// <summary>A tty write: queue the bytes and start_tx(), the rest is interrupt driven.</summary>
    public void Write(string text)
    {
        foreach (char c in text)
        {
            _transmitQueue.Enqueue((byte)c);
        }

        if ((_ier & IerTransmitterEmpty) == 0)
        {
            _ier |= IerTransmitterEmpty;
            _h.Out(InterruptEnableRegister, _ier);
        }
    }

    public int PendingTransmit => _transmitQueue.Count;

    /// <summary>
    /// The CPU side of an edge-triggered ISA IRQ: every rising edge not yet serviced runs
    /// serial8250_interrupt(), which calls the port handler until IIR reports no interrupt.
    /// </summary>
    public void ServiceInterrupts()
    {
        while (_servicedEdges < _h.RisingEdges)
        {
            _servicedEdges = _h.RisingEdges;
            InterruptsHandled++;
            for (int pass = 0; pass < 512; pass++)
            {
                byte iir = _h.In(InterruptIdentificationRegister);
                if ((iir & IirNoInterrupt) != 0)
                {
                    break;
                }

                HandleIrq(iir);
            }
        }
    }

    private void HandleIrq(byte iir)
    {
        byte status = _h.In(LineStatusRegister);
        if ((status & (LsrDataReady | LsrBreak)) != 0 && (iir & IirReceivedData) != 0)
        {
            int max = 256;
            do
            {
                Received.Append((char)_h.In(DataRegister));
                status = _h.In(LineStatusRegister);
            }
            while ((status & (LsrDataReady | LsrBreak)) != 0 && --max > 0);
        }

        _h.In(ModemStatusRegister);
        if ((status & LsrTransmitterHoldingEmpty) != 0)
        {
            TransmitChars();
        }
    }

    private void TransmitChars()
    {
        if (_transmitQueue.Count == 0)
        {
            StopTx();
            return;
        }

        for (int count = TxLoadSize; count > 0 && _transmitQueue.Count > 0; count--)
        {
            _h.Out(DataRegister, _transmitQueue.Dequeue());
        }

        if (_transmitQueue.Count == 0)
        {
            StopTx();
        }
    }

    private void StopTx()
    {
        if ((_ier & IerTransmitterEmpty) != 0)
        {
            _ier &= unchecked((byte)~IerTransmitterEmpty);
            _h.Out(InterruptEnableRegister, _ier);
        }
    }

    private string Autoconfig16550A()
    {
        // EFR behind DLAB (ST16C650V1)?
        _h.Out(LineControlRegister, LcrConfModeA);
        if (_h.In(2) == 0)
        {
            return "16650";
        }

        // EFR behind LCR=0xBF (ST16C650V2, TI16C752)?
        _h.Out(LineControlRegister, LcrConfModeB);
        if (_h.In(2) == 0)
        {
            return "16650V2";
        }

        // National Semiconductor SuperIO: bank 2's EXCR1 follows MCR.LOOP?
        _h.Out(LineControlRegister, 0);
        byte status1 = _h.In(ModemControlRegister);
        _h.Out(LineControlRegister, 0xE0);
        byte status2 = _h.In(2);
        if (((status2 ^ status1) & McrLoopback) == 0)
        {
            _h.Out(LineControlRegister, 0);
            _h.Out(ModemControlRegister, (byte)(status1 ^ McrLoopback));
            _h.Out(LineControlRegister, 0xE0);
            status2 = _h.In(2);
            _h.Out(LineControlRegister, 0);
            _h.Out(ModemControlRegister, status1);
            if (((status2 ^ status1) & McrLoopback) != 0)
            {
                return "NS16550A";
            }
        }

        // TI16750: IIR bit 5 follows the 64-byte FIFO bit only with DLAB set.
        _h.Out(LineControlRegister, 0);
        _h.Out(FifoControlRegister, FcrEnable | UartFcr7_64Byte);
        int iir1 = _h.In(InterruptIdentificationRegister) >> 5;
        _h.Out(FifoControlRegister, FcrEnable);
        _h.Out(LineControlRegister, LcrConfModeA);
        _h.Out(FifoControlRegister, FcrEnable | UartFcr7_64Byte);
        int iir2 = _h.In(InterruptIdentificationRegister) >> 5;
        _h.Out(FifoControlRegister, FcrEnable);
        _h.Out(LineControlRegister, 0);
        if (iir1 == 6 && iir2 == 7)
        {
            return "TI16750";
        }

        // XScale: IER bit 6 (UUE) sticks?
        byte ierSave = _h.In(InterruptEnableRegister);
        _h.Out(InterruptEnableRegister, (byte)(ierSave & ~UartIerUue));
        if ((_h.In(InterruptEnableRegister) & UartIerUue) == 0)
        {
            _h.Out(InterruptEnableRegister, (byte)(ierSave | UartIerUue));
            if ((_h.In(InterruptEnableRegister) & UartIerUue) != 0)
            {
                return "XScale";
            }
        }

        _h.Out(InterruptEnableRegister, ierSave);
        int fifoSize = SizeFifo();
        return fifoSize == 64 ? "U6_16550A" : $"16550A fifo={fifoSize}";
    }

    /// <summary>size_fifo(): loop 256 bytes back at 115200 baud and count what the FIFO kept.</summary>
    private int SizeFifo()
    {
        byte oldLcr = _h.In(LineControlRegister);
        _h.Out(LineControlRegister, 0);
        byte oldFcr = _h.In(FifoControlRegister);
        byte oldMcr = _h.In(ModemControlRegister);
        _h.Out(FifoControlRegister, FcrEnable | FcrClearReceive | FcrClearTransmit);
        _h.Out(ModemControlRegister, McrLoopback);
        _h.Out(LineControlRegister, LcrConfModeA);
        int oldDivisor = _h.In(DataRegister) | (_h.In(InterruptEnableRegister) << 8);
        _h.Out(DataRegister, 1);
        _h.Out(InterruptEnableRegister, 0);
        _h.Out(LineControlRegister, 0x03);
        for (int i = 0; i < 256; i++)
        {
            _h.Out(DataRegister, (byte)i);
        }

        int count = 0;
        while ((_h.In(LineStatusRegister) & LsrDataReady) != 0 && count < 256)
        {
            Assert.Equal(count, _h.In(DataRegister)); // the FIFO kept the oldest bytes
            count++;
        }

        _h.Out(FifoControlRegister, oldFcr);
        _h.Out(ModemControlRegister, oldMcr);
        _h.Out(LineControlRegister, LcrConfModeA);
        _h.Out(DataRegister, (byte)oldDivisor);
        _h.Out(InterruptEnableRegister, (byte)(oldDivisor >> 8));
        _h.Out(LineControlRegister, oldLcr);
        return count;
    }

    private void ClearFifos()
    {
        _h.Out(FifoControlRegister, FcrEnable);
        _h.Out(FifoControlRegister, FcrEnable | FcrClearReceive | FcrClearTransmit);
        _h.Out(FifoControlRegister, 0);
    }
}
