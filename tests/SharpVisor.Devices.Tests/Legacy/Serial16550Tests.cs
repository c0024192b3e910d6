using System.Text;
using SharpVisor.Devices.Legacy;
using static SharpVisor.Devices.Legacy.Serial16550;

namespace SharpVisor.Devices.Tests.Legacy;

public sealed class Serial16550Tests
{
    [Fact]
    public void ResetStateIsAnIdle16550WithCarrier()
    {
        var h = new UartHarness();

        Assert.Equal(LsrTransmitterHoldingEmpty | LsrTransmitterEmpty, h.Lsr);
        Assert.Equal(IirNoInterrupt, h.Iir);
        Assert.Equal(0, h.In(LineControlRegister));
        Assert.Equal(McrOut2, h.In(ModemControlRegister));
        Assert.Equal(MsrCts | MsrDsr | MsrDcd, h.In(ModemStatusRegister));
        Assert.Equal(0, h.In(InterruptEnableRegister));
        Assert.False(h.Line);
    }

    [Fact]
    public void DivisorLatchTakesOverOffsetsZeroAndOneWhileDlabIsSet()
    {
        var h = new UartHarness();
        h.Out(InterruptEnableRegister, 0x05);

        h.Out(LineControlRegister, 0x83); // DLAB, 8N1
        Assert.Equal(0x0C, h.In(DataRegister)); // 9600 baud at reset
        Assert.Equal(0x00, h.In(InterruptEnableRegister));
        h.Out(DataRegister, 0x01); // 115200 baud
        h.Out(InterruptEnableRegister, 0x02);
        Assert.Equal(0x01, h.In(DataRegister));
        Assert.Equal(0x02, h.In(InterruptEnableRegister));

        // Writing the divisor neither transmits nor changes IER.
        Assert.Equal(0, h.Output.Length);
        h.Out(LineControlRegister, 0x03);
        Assert.Equal(0x05, h.In(InterruptEnableRegister));

        // The latch keeps its value when DLAB comes back.
        h.Out(LineControlRegister, 0x83);
        Assert.Equal(0x01, h.In(DataRegister));
        Assert.Equal(0x02, h.In(InterruptEnableRegister));
    }

    [Fact]
    public void LineControlModemControlAndScratchRoundTrip()
    {
        var h = new UartHarness();
        for (int value = 0; value < 256; value++)
        {
            h.Out(LineControlRegister, (byte)value);
            Assert.Equal(value, h.In(LineControlRegister));
            h.Out(ScratchRegister, (byte)value);
            Assert.Equal(value, h.In(ScratchRegister));
            h.Out(ModemControlRegister, (byte)value);
            Assert.Equal(value & 0x1F, h.In(ModemControlRegister));
        }

        // IER keeps only its four defined bits (Linux's autoconfig checks 0x0F reads back as 0x0F).
        h.Out(LineControlRegister, 0x03);
        h.Out(InterruptEnableRegister, 0xFF);
        Assert.Equal(0x0F, h.In(InterruptEnableRegister));
    }

    [Fact]
    public void TransmittedBytesReachTheSinkExactly()
    {
        var h = new UartHarness();
        byte[] all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        foreach (byte b in all)
        {
            // A polling guest: wait for THRE, then write THR.
            Assert.NotEqual(0, h.Lsr & LsrTransmitterHoldingEmpty);
            h.Out(DataRegister, b);
        }

        Assert.Equal(all, ((MemoryStream)h.Output).ToArray());
        Assert.Equal(256, h.Uart.TransmittedBytes);
        Assert.False(h.Line); // polled: no interrupt enabled, the line never rises
        Assert.Equal(0, h.RisingEdges);
    }

    [Fact]
    public void WideAccessesReachConsecutiveRegisters()
    {
        var h = new UartHarness();
        h.Out(ScratchRegister, 0x5A);
        byte[] pair = new byte[2];
        h.Uart.Read(LineStatusRegister, pair);
        Assert.Equal([LsrTransmitterHoldingEmpty | LsrTransmitterEmpty, MsrCts | MsrDsr | MsrDcd], pair);

        h.Uart.Write(LineControlRegister, [0x03, 0x0B]);
        Assert.Equal(0x03, h.In(LineControlRegister));
        Assert.Equal(0x0B, h.In(ModemControlRegister));
    }

    [Fact]
    public void LineStatusShowsThrBusyOnlyWhileTheByteIsBeingSent()
    {
        var observed = new List<byte>();
        UartHarness? h = null;
        var sink = new CallbackStream(_ => observed.Add(h!.Lsr));
        h = new UartHarness(sink);

        h.Out(DataRegister, (byte)'A');

        Assert.Equal([(byte)0], observed.Select(lsr => (byte)(lsr & (LsrTransmitterHoldingEmpty | LsrTransmitterEmpty))));
        Assert.Equal(LsrTransmitterHoldingEmpty | LsrTransmitterEmpty, h.Lsr);
    }

    [Fact]
    public void ReceivedByteSetsDataReadyUntilRead()
    {
        var h = new UartHarness();
        h.Input("A");

        Assert.Equal(LsrDataReady | LsrTransmitterHoldingEmpty | LsrTransmitterEmpty, h.Lsr);
        Assert.Equal((byte)'A', h.In(DataRegister));
        Assert.Equal(0, h.Lsr & LsrDataReady);

        // An empty receiver repeats the last byte, as RBR does on the real part.
        Assert.Equal((byte)'A', h.In(DataRegister));
    }

    [Fact]
    public void ReceiveFifoDeliversAPasteInOrderThroughTheHostQueue()
    {
        var h = new UartHarness();
        h.Out(FifoControlRegister, FcrEnable | FcrClearReceive | FcrClearTransmit);
        string paste = "The quick brown fox jumps over the lazy dog";
        h.Input(paste);

        // Sixteen bytes sit in the FIFO; the rest waits on the host side, nothing is lost.
        Assert.Equal(paste.Length - FifoSize, h.Uart.PendingInputBytes);

        var received = new StringBuilder();
        while ((h.Lsr & LsrDataReady) != 0)
        {
            received.Append((char)h.In(DataRegister));
        }

        Assert.Equal(paste, received.ToString());
        Assert.Equal(0, h.Uart.PendingInputBytes);
        Assert.Equal(0, h.Lsr & LsrOverrunError);
    }

    [Fact]
    public void WithoutFifosTheReceiverHoldsOneByteAndTheRestWaits()
    {
        var h = new UartHarness();
        h.Input("xyz");

        Assert.Equal(2, h.Uart.PendingInputBytes);
        Assert.Equal((byte)'x', h.In(DataRegister));
        Assert.Equal((byte)'y', h.In(DataRegister));
        Assert.Equal((byte)'z', h.In(DataRegister));
        Assert.Equal(0, h.Lsr & (LsrDataReady | LsrOverrunError));
    }

    [Fact]
    public void FullFifoKeepsItsBytesAndFlagsOverrunUntilLsrIsRead()
    {
        var h = new UartHarness();
        h.Out(FifoControlRegister, FcrEnable);
        h.Out(ModemControlRegister, McrLoopback);
        for (int i = 0; i < FifoSize + 3; i++)
        {
            h.Out(DataRegister, (byte)i);
        }

        byte lsr = h.Lsr;
        Assert.Equal(LsrOverrunError | LsrDataReady, lsr & (LsrOverrunError | LsrDataReady));
        Assert.Equal(0, h.Lsr & LsrOverrunError); // reading LSR cleared OE

        for (int i = 0; i < FifoSize; i++)
        {
            Assert.Equal(i, h.In(DataRegister));
        }

        Assert.Equal(0, h.Lsr & LsrDataReady);
    }

    [Fact]
    public void WithoutFifosANewByteOverwritesTheUnreadOne()
    {
        var h = new UartHarness();
        h.Out(ModemControlRegister, McrLoopback);
        h.Out(DataRegister, 1);
        h.Out(DataRegister, 2);

        Assert.NotEqual(0, h.Lsr & LsrOverrunError);
        Assert.Equal(2, h.In(DataRegister));
        Assert.Equal(0, h.Lsr & (LsrDataReady | LsrOverrunError));
    }

    [Fact]
    public void HostQueueOverflowDropsCountsAndFlagsOverrun()
    {
        var h = new UartHarness(inputQueueCapacity: 4);
        h.Out(FifoControlRegister, FcrEnable);

        int accepted = h.Uart.EnqueueInput(new byte[FifoSize + 4 + 3]);

        Assert.Equal(FifoSize + 4, accepted);
        Assert.Equal(3, h.Uart.DroppedInputBytes);
        Assert.NotEqual(0, h.Lsr & LsrOverrunError);
    }

    [Fact]
    public void FifoControlClearsTheReceiveFifoAndSetsIirFifoBits()
    {
        var h = new UartHarness();
        h.Out(FifoControlRegister, FcrEnable);
        Assert.Equal(IirFifosEnabled | IirNoInterrupt, h.Iir);

        h.Input("0123456789abcdefWXYZ"); // 16 in the FIFO, 4 waiting
        h.Out(FifoControlRegister, FcrEnable | FcrClearReceive);

        // The receiver's contents are gone; host bytes not yet received flow in behind.
        Assert.Equal((byte)'W', h.In(DataRegister));
        Assert.Equal((byte)'X', h.In(DataRegister));

        h.Out(FifoControlRegister, 0);
        Assert.Equal(IirNoInterrupt, h.Iir);
        Assert.Equal(0, h.Lsr & LsrDataReady); // switching FIFOs off flushed them
    }

    [Fact]
    public void InterruptIdentificationFollowsPriorityOrder()
    {
        var h = new UartHarness();

        // Loopback without FIFOs: two bytes give an overrun and data; entering loopback drops
        // CTS/DSR/DCD, so modem-status deltas are pending too; THR is empty.
        h.Out(ModemControlRegister, McrLoopback);
        h.Out(DataRegister, 0x11);
        h.Out(DataRegister, 0x22);
        h.Out(InterruptEnableRegister, IerReceivedData | IerTransmitterEmpty | IerReceiverLineStatus | IerModemStatus);

        Assert.Equal(IirReceiverLineStatus, h.Iir);
        h.In(LineStatusRegister);
        Assert.Equal(IirReceivedData, h.Iir);
        Assert.Equal(0x22, h.In(DataRegister));
        Assert.Equal(IirTransmitterEmpty, h.Iir); // this read acknowledges THRE
        Assert.Equal(IirModemStatus, h.Iir);
        Assert.NotEqual(0, h.In(ModemStatusRegister) & 0x0F);
        Assert.Equal(IirNoInterrupt, h.Iir);
    }

    [Fact]
    public void ReceivedDataBelowTheTriggerLevelReportsCharacterTimeout()
    {
        var h = new UartHarness();
        h.Out(FifoControlRegister, FcrEnable | 0x80); // trigger at 8 bytes, as Linux sets it
        h.Out(InterruptEnableRegister, IerReceivedData);

        h.Input("abc");
        Assert.Equal(IirFifosEnabled | IirCharacterTimeout, h.Iir);
        Assert.True(h.Line);

        h.Input("defgh");
        Assert.Equal(IirFifosEnabled | IirReceivedData, h.Iir);

        while ((h.Lsr & LsrDataReady) != 0)
        {
            h.In(DataRegister);
        }

        Assert.Equal(IirFifosEnabled | IirNoInterrupt, h.Iir);
        Assert.False(h.Line);
    }

    [Fact]
    public void ThreInterruptIsAcknowledgedByIirOrThrAndReArmedByIerWrites()
    {
        var h = new UartHarness();

        h.Out(InterruptEnableRegister, IerTransmitterEmpty);
        Assert.True(h.Line);
        Assert.Equal(IirTransmitterEmpty, h.Iir); // acknowledges
        Assert.False(h.Line);
        Assert.Equal(IirNoInterrupt, h.Iir);

        // Linux's 8250 startup test: toggling IER.THRI must raise THRE again.
        h.Out(InterruptEnableRegister, 0);
        h.Out(InterruptEnableRegister, IerTransmitterEmpty);
        Assert.Equal(IirTransmitterEmpty, h.Iir);

        // Every byte written re-raises THRE as a fresh edge once it has gone out.
        int edges = h.RisingEdges;
        h.Out(DataRegister, (byte)'a');
        h.Out(DataRegister, (byte)'b');
        Assert.True(h.Line);
        Assert.Equal(edges + 2, h.RisingEdges);

        h.Out(InterruptEnableRegister, 0);
        Assert.False(h.Line);
        Assert.Equal(IirNoInterrupt, h.Iir);
    }

    [Fact]
    public void Out2GatesTheInterruptLineAndLoopbackDisconnectsIt()
    {
        var h = new UartHarness();
        h.Out(ModemControlRegister, 0);
        h.Out(InterruptEnableRegister, IerTransmitterEmpty);

        // Pending inside the UART, but OUT2 keeps it off the bus.
        Assert.False(h.Line);
        h.Out(ModemControlRegister, McrOut2);
        Assert.True(h.Line);
        h.Out(ModemControlRegister, McrOut2 | McrLoopback);
        Assert.False(h.Line);
        h.Out(ModemControlRegister, McrOut2 | McrDtr | McrRts);
        Assert.True(h.Line);
        Assert.Equal(IirTransmitterEmpty, h.Iir);
    }

    [Theory]
    [InlineData(McrDtr, MsrDsr)]
    [InlineData(McrRts, MsrCts)]
    [InlineData(McrOut1, MsrRi)]
    [InlineData(McrOut2, MsrDcd)]
    [InlineData(McrOut2 | McrRts, MsrDcd | MsrCts)] // Linux's autoconfig loopback probe expects 0x90
    [InlineData(0, 0)]
    public void LoopbackWiresModemOutputsToModemInputs(byte mcrBits, byte msrBits)
    {
        var h = new UartHarness();
        h.Out(ModemControlRegister, (byte)(McrLoopback | mcrBits));

        Assert.Equal(msrBits, h.In(ModemStatusRegister) & 0xF0);

        h.Out(ModemControlRegister, 0);
        Assert.Equal(MsrCts | MsrDsr | MsrDcd, h.In(ModemStatusRegister) & 0xF0);
    }

    [Fact]
    public void ModemStatusDeltasAreSetOnChangeAndClearedOnRead()
    {
        var h = new UartHarness();
        h.Out(ModemControlRegister, McrLoopback | McrOut1 | McrRts | McrDtr | McrOut2);
        h.In(ModemStatusRegister);

        h.Out(ModemControlRegister, McrLoopback | McrDtr | McrOut2); // drop RTS and OUT1
        Assert.Equal(MsrDsr | MsrDcd | MsrDeltaCts | MsrTrailingEdgeRi, h.In(ModemStatusRegister));
        Assert.Equal(MsrDsr | MsrDcd, h.In(ModemStatusRegister));
    }

    [Fact]
    public void LoopbackSendsTransmittedBytesToTheReceiverNotTheSink()
    {
        var h = new UartHarness();
        h.Out(FifoControlRegister, FcrEnable);
        h.Out(ModemControlRegister, McrLoopback);
        h.Out(DataRegister, (byte)'Z');
        h.Input("h"); // host input waits while the line is looped back

        Assert.Equal(0, h.Output.Length);
        Assert.Equal((byte)'Z', h.In(DataRegister));
        Assert.Equal(0, h.Lsr & LsrDataReady);

        h.Out(ModemControlRegister, McrOut2);
        Assert.Equal((byte)'h', h.In(DataRegister));
    }

    [Fact]
    public void HostInputFromAnotherThreadArrivesInOrderAndRaisesTheLine()
    {
        var h = new UartHarness();
        h.Out(FifoControlRegister, FcrEnable | 0x80);
        h.Out(InterruptEnableRegister, IerReceivedData);
        byte[] sent = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();

        var writer = new Thread(() =>
        {
            for (int offset = 0; offset < sent.Length; offset += 100)
            {
                h.Uart.EnqueueInput(sent.AsSpan(offset, 100));
                Thread.Yield();
            }
        });
        writer.Start();

        var received = new List<byte>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (received.Count < sent.Length && DateTime.UtcNow < deadline)
        {
            if ((h.Lsr & LsrDataReady) != 0)
            {
                Assert.True(h.Line); // data pending with RDI enabled always shows on the line
                received.Add(h.In(DataRegister));
            }
        }

        writer.Join();
        Assert.Equal(sent, received);
        Assert.Equal(0, h.Uart.DroppedInputBytes);
        Assert.False(h.Line);
    }

    [Fact]
    public void FailingSinkDropsOutputWithoutFailingTheGuest()
    {
        var h = new UartHarness(new CallbackStream(_ => throw new IOException("broken pipe")));

        h.Out(DataRegister, (byte)'a');
        h.Out(DataRegister, (byte)'b');

        Assert.Equal("broken pipe", h.Uart.OutputError);
        Assert.Equal(0, h.Uart.TransmittedBytes);
        Assert.NotEqual(0, h.Lsr & LsrTransmitterHoldingEmpty);
    }

    /// <summary>A write-only stream that calls back for every byte written.</summary>
    private sealed class CallbackStream : Stream
    {
        private readonly Action<byte> _onByte;

        public CallbackStream(Action<byte> onByte) => _onByte = onByte;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            for (int i = 0; i < count; i++)
            {
                _onByte(buffer[offset + i]);
            }
        }
    }
}
