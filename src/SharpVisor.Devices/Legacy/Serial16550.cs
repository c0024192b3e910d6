using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Legacy;

/// <summary>
/// A National Semiconductor 16550A UART as wired on a PC (COM1: ports 0x3F8-0x3FF, IRQ 4),
/// modelled on the datasheet and QEMU's hw/char/serial.c so that Linux's 8250 driver
/// autoconfigures it as a 16550A and tiny kernels can poll LSR.THRE.
/// </summary>
/// <remarks>
/// Transmission is instantaneous: a byte written to THR goes straight to the output sink
/// (or, in loopback mode, to the receiver), so THR and the transmitter are always empty
/// again when the write returns. Receiving goes through a 16-byte FIFO fed from a bounded
/// host-side queue, so a paste larger than the FIFO waits on the host side instead of
/// overrunning. The vCPU thread and the host input thread both call in; one lock guards
/// the registers, and the interrupt line is driven while holding it so levels never
/// reach the interrupt controller out of order.
/// </remarks>
public sealed class Serial16550 : IPortIoDevice, ISnapshotable
{
    public const ushort Com1Port = 0x3F8;
    public const uint Com1Irq = 4;
    public const ushort PortCount = 8;
    public const int FifoSize = 16;
    public const int DefaultInputQueueCapacity = 64 * 1024;

    // Register offsets (DLAB switches 0 and 1 to the divisor latch).
    public const int DataRegister = 0;
    public const int InterruptEnableRegister = 1;
    public const int InterruptIdentificationRegister = 2;
    public const int FifoControlRegister = 2;
    public const int LineControlRegister = 3;
    public const int ModemControlRegister = 4;
    public const int LineStatusRegister = 5;
    public const int ModemStatusRegister = 6;
    public const int ScratchRegister = 7;

    public const byte IerReceivedData = 0x01;
    public const byte IerTransmitterEmpty = 0x02;
    public const byte IerReceiverLineStatus = 0x04;
    public const byte IerModemStatus = 0x08;

    public const byte IirNoInterrupt = 0x01;
    public const byte IirModemStatus = 0x00;
    public const byte IirTransmitterEmpty = 0x02;
    public const byte IirReceivedData = 0x04;
    public const byte IirReceiverLineStatus = 0x06;
    public const byte IirCharacterTimeout = 0x0C;
    public const byte IirFifosEnabled = 0xC0;

    public const byte FcrEnable = 0x01;
    public const byte FcrClearReceive = 0x02;
    public const byte FcrClearTransmit = 0x04;
    public const byte FcrDmaMode = 0x08;
    public const byte FcrTriggerMask = 0xC0;

    public const byte LcrDivisorLatchAccess = 0x80;

    public const byte McrDtr = 0x01;
    public const byte McrRts = 0x02;
    public const byte McrOut1 = 0x04;
    public const byte McrOut2 = 0x08;
    public const byte McrLoopback = 0x10;

    public const byte LsrDataReady = 0x01;
    public const byte LsrOverrunError = 0x02;
    public const byte LsrParityError = 0x04;
    public const byte LsrFramingError = 0x08;
    public const byte LsrBreak = 0x10;
    public const byte LsrTransmitterHoldingEmpty = 0x20;
    public const byte LsrTransmitterEmpty = 0x40;

    public const byte MsrDeltaCts = 0x01;
    public const byte MsrDeltaDsr = 0x02;
    public const byte MsrTrailingEdgeRi = 0x04;
    public const byte MsrDeltaDcd = 0x08;
    public const byte MsrCts = 0x10;
    public const byte MsrDsr = 0x20;
    public const byte MsrRi = 0x40;
    public const byte MsrDcd = 0x80;

    private const byte LsrErrorBits = LsrOverrunError | LsrParityError | LsrFramingError | LsrBreak;

    private readonly object _lock = new();
    private readonly InterruptLine _interrupt;
    private readonly ByteQueue _receiveFifo = new(FifoSize);
    private readonly ByteQueue _hostInput;

    private Stream? _output;
    private string? _outputError;
    private long _transmittedBytes;
    private long _droppedInputBytes;
    private bool _lineAsserted;

    private ushort _divisor = 0x0C; // 9600 baud, as PC firmware leaves it
    private byte _receiveBuffer;
    private byte _interruptEnable;
    private byte _fifoControl;
    private int _receiveTriggerLevel = 1;
    private byte _lineControl;
    private byte _modemControl = McrOut2; // as QEMU resets it, so guests tested there see interrupts
    private byte _lineStatus = LsrTransmitterHoldingEmpty | LsrTransmitterEmpty;
    private byte _modemLines = MsrCts | MsrDsr | MsrDcd;
    private byte _modemDeltas;
    private byte _scratch;
    private bool _transmitterEmptyPending;

    public Serial16550(InterruptLine interrupt, Stream? output = null, int inputQueueCapacity = DefaultInputQueueCapacity)
    {
        ArgumentNullException.ThrowIfNull(interrupt);
        _interrupt = interrupt;
        _output = output;
        _hostInput = new ByteQueue(inputQueueCapacity);
    }

    /// <summary>Where transmitted bytes go; null discards them. Each byte is written and flushed at once.</summary>
    public Stream? Output
    {
        get
        {
            lock (_lock)
            {
                return _output;
            }
        }

        set
        {
            lock (_lock)
            {
                _output = value;
                _outputError = null;
            }
        }
    }

    /// <summary>Why output stopped (the sink failed, e.g. a closed pipe); null while it works.</summary>
    public string? OutputError
    {
        get
        {
            lock (_lock)
            {
                return _outputError;
            }
        }
    }

    /// <summary>Bytes the guest transmitted to the output sink.</summary>
    public long TransmittedBytes => Interlocked.Read(ref _transmittedBytes);

    /// <summary>Host input bytes dropped because the host-side queue was full (each one flags an overrun).</summary>
    public long DroppedInputBytes => Interlocked.Read(ref _droppedInputBytes);

    /// <summary>Host input not yet moved into the receive FIFO.</summary>
    public int PendingInputBytes
    {
        get
        {
            lock (_lock)
            {
                return _hostInput.Count;
            }
        }
    }

    /// <summary>
    /// Takes as much of <paramref name="data"/> as the host-side buffer has room for, without
    /// flagging an overrun: for feeders that can wait (piped console input) and retry the rest.
    /// </summary>
    /// <returns>The number of leading bytes taken.</returns>
    public int OfferInput(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            int accepted = 0;
            foreach (byte b in data)
            {
                if (_hostInput.IsFull)
                {
                    MoveHostInputToReceiver();
                }

                if (!_hostInput.TryEnqueue(b))
                {
                    break;
                }

                accepted++;
            }

            MoveHostInputToReceiver();
            UpdateInterrupt();
            return accepted;
        }
    }

    /// <summary>
    /// Queues bytes from the host (a terminal, a test) for the guest to receive. Bytes beyond
    /// the host-side queue's capacity are dropped and flag an overrun in LSR.
    /// </summary>
    /// <returns>The number of bytes accepted.</returns>
    public int EnqueueInput(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            int accepted = 0;
            foreach (byte b in data)
            {
                if (_hostInput.IsFull)
                {
                    // Let the receiver take what it has room for before giving up on a byte.
                    MoveHostInputToReceiver();
                }

                if (_hostInput.TryEnqueue(b))
                {
                    accepted++;
                }
                else
                {
                    _droppedInputBytes++;
                    _lineStatus |= LsrOverrunError;
                }
            }

            MoveHostInputToReceiver();
            UpdateInterrupt();
            return accepted;
        }
    }

    public void Read(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            // The UART's registers are byte-wide: a wider access reads consecutive registers.
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = ReadRegister((offset + i) & 7);
            }
        }
    }

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                WriteRegister((offset + i) & 7, data[i]);
            }
        }
    }

    private bool DivisorLatchSelected => (_lineControl & LcrDivisorLatchAccess) != 0;

    private bool FifosEnabled => (_fifoControl & FcrEnable) != 0;

    private bool Loopback => (_modemControl & McrLoopback) != 0;

    private byte ReadRegister(int register)
    {
        switch (register)
        {
            case DataRegister:
                return DivisorLatchSelected ? (byte)_divisor : ReadReceiveBuffer();

            case InterruptEnableRegister:
                return DivisorLatchSelected ? (byte)(_divisor >> 8) : _interruptEnable;

            case InterruptIdentificationRegister:
            {
                byte iir = InterruptIdentification();
                if ((iir & 0x0F) == IirTransmitterEmpty)
                {
                    // Reading IIR while it reports THRE acknowledges that interrupt.
                    _transmitterEmptyPending = false;
                    UpdateInterrupt();
                }

                return iir;
            }

            case LineControlRegister:
                return _lineControl;

            case ModemControlRegister:
                return _modemControl;

            case LineStatusRegister:
            {
                byte lsr = _lineStatus;
                if ((lsr & (LsrOverrunError | LsrBreak)) != 0)
                {
                    _lineStatus &= unchecked((byte)~(LsrOverrunError | LsrBreak));
                    UpdateInterrupt();
                }

                return lsr;
            }

            case ModemStatusRegister:
            {
                byte msr = (byte)(_modemLines | _modemDeltas);
                if (_modemDeltas != 0)
                {
                    _modemDeltas = 0;
                    UpdateInterrupt();
                }

                return msr;
            }

            default:
                return _scratch;
        }
    }

    private void WriteRegister(int register, byte value)
    {
        switch (register)
        {
            case DataRegister:
                if (DivisorLatchSelected)
                {
                    _divisor = (ushort)((_divisor & 0xFF00) | value);
                }
                else
                {
                    Transmit(value);
                }

                break;

            case InterruptEnableRegister:
                if (DivisorLatchSelected)
                {
                    _divisor = (ushort)((_divisor & 0x00FF) | (value << 8));
                }
                else
                {
                    WriteInterruptEnable(value);
                }

                break;

            case FifoControlRegister:
                WriteFifoControl(value);
                break;

            case LineControlRegister:
                _lineControl = value;
                break;

            case ModemControlRegister:
                WriteModemControl(value);
                break;

            case LineStatusRegister:
            case ModemStatusRegister:
                // Read-only status registers (writes are for factory test on real parts).
                break;

            default:
                _scratch = value;
                break;
        }
    }

    private byte ReadReceiveBuffer()
    {
        if (_receiveFifo.TryDequeue(out byte value))
        {
            _receiveBuffer = value;
        }

        if (_receiveFifo.IsEmpty)
        {
            _lineStatus &= unchecked((byte)~(LsrDataReady | LsrBreak));
        }

        // Room in the receiver: let waiting host input in.
        MoveHostInputToReceiver();
        UpdateInterrupt();

        // An empty receiver keeps returning the last byte, as the hardware's RBR does.
        return _receiveBuffer;
    }

    private void Transmit(byte value)
    {
        // Writing THR acknowledges a THRE interrupt and fills THR; the line drops here so the
        // transmitter-empty interrupt below is a fresh edge for edge-triggered ISA IRQs.
        _transmitterEmptyPending = false;
        _lineStatus &= unchecked((byte)~(LsrTransmitterHoldingEmpty | LsrTransmitterEmpty));
        UpdateInterrupt();

        if (Loopback)
        {
            ReceiveFromLine(value);
        }
        else
        {
            WriteToOutput(value);
        }

        _lineStatus |= LsrTransmitterHoldingEmpty | LsrTransmitterEmpty;
        _transmitterEmptyPending = true;
        UpdateInterrupt();
    }

    private void WriteToOutput(byte value)
    {
        if (_output is null || _outputError is not null)
        {
            return;
        }

        try
        {
            _output.WriteByte(value);
            _output.Flush();
            _transmittedBytes++;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            // A closed terminal or pipe must not take the vCPU down: the guest's output is dropped.
            _outputError = e.Message;
        }
    }

    private void WriteInterruptEnable(byte value)
    {
        _interruptEnable = (byte)(value & 0x0F);

        // Enabling THRE interrupts while THR is empty raises one at once, even if an earlier
        // one was acknowledged: Linux's 8250 driver tests for exactly this at startup and
        // relies on it to restart transmission.
        _transmitterEmptyPending = (_interruptEnable & IerTransmitterEmpty) != 0
            && (_lineStatus & LsrTransmitterHoldingEmpty) != 0;
        UpdateInterrupt();
    }

    private void WriteFifoControl(byte value)
    {
        int command = value;

        // Switching the FIFOs on or off empties both of them.
        if (((command ^ _fifoControl) & FcrEnable) != 0)
        {
            command |= FcrClearReceive | FcrClearTransmit;
        }

        if ((command & FcrClearReceive) != 0)
        {
            _receiveFifo.Clear();
            _lineStatus &= unchecked((byte)~(LsrDataReady | LsrBreak));
        }

        // FcrClearTransmit needs no work: transmitted bytes leave at once, the FIFO is always empty.
        _receiveTriggerLevel = (command & FcrTriggerMask) switch
        {
            0x00 => 1,
            0x40 => 4,
            0x80 => 8,
            _ => 14,
        };

        // Only the enable, DMA mode and trigger bits stick; the clear bits are self-clearing.
        _fifoControl = (byte)(command & (FcrEnable | FcrDmaMode | FcrTriggerMask));
        MoveHostInputToReceiver();
        UpdateInterrupt();
    }

    private void WriteModemControl(byte value)
    {
        _modemControl = (byte)(value & 0x1F);

        byte lines;
        if (Loopback)
        {
            // Loopback wires the modem outputs to the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
            lines = (byte)(((_modemControl & McrRts) << 3)
                | ((_modemControl & McrDtr) << 5)
                | ((_modemControl & (McrOut1 | McrOut2)) << 4));
        }
        else
        {
            // A null-modem host side: always clear to send, ready and carrier present.
            lines = MsrCts | MsrDsr | MsrDcd;
        }

        byte changed = (byte)(lines ^ _modemLines);
        _modemDeltas |= (byte)(changed >> 4 & (MsrDeltaCts | MsrDeltaDsr | MsrDeltaDcd));
        if ((_modemLines & MsrRi) != 0 && (lines & MsrRi) == 0)
        {
            _modemDeltas |= MsrTrailingEdgeRi;
        }

        _modemLines = lines;
        MoveHostInputToReceiver();
        UpdateInterrupt();
    }

    /// <summary>A byte arriving on the receive line (loopback): an overrun when the receiver is full.</summary>
    private void ReceiveFromLine(byte value)
    {
        if (FifosEnabled)
        {
            // A full FIFO keeps its contents; the new byte is lost.
            if (!_receiveFifo.TryEnqueue(value))
            {
                _lineStatus |= LsrOverrunError;
            }
        }
        else
        {
            // Without FIFOs, RBR holds one byte and a new one overwrites it.
            if (!_receiveFifo.IsEmpty)
            {
                _lineStatus |= LsrOverrunError;
                _receiveFifo.Clear();
            }

            _receiveFifo.TryEnqueue(value);
        }

        _lineStatus |= LsrDataReady;
    }

    /// <summary>Fills the receiver from the host queue as far as it has room (never in loopback).</summary>
    private void MoveHostInputToReceiver()
    {
        if (Loopback)
        {
            return;
        }

        int capacity = FifosEnabled ? FifoSize : 1;
        while (_receiveFifo.Count < capacity && _hostInput.TryDequeue(out byte value))
        {
            _receiveFifo.TryEnqueue(value);
            _lineStatus |= LsrDataReady;
        }
    }

    /// <summary>The highest-priority pending interrupt, as IIR reports it.</summary>
    private byte InterruptIdentification()
    {
        byte id;
        if ((_interruptEnable & IerReceiverLineStatus) != 0 && (_lineStatus & LsrErrorBits) != 0)
        {
            id = IirReceiverLineStatus;
        }
        else if ((_interruptEnable & IerReceivedData) != 0 && (_lineStatus & LsrDataReady) != 0)
        {
            // Below the FIFO trigger level the character timeout reports the data. Nothing more
            // arrives while the host queue is empty, so the timeout is taken to expire at once.
            id = FifosEnabled && _receiveFifo.Count < _receiveTriggerLevel ? IirCharacterTimeout : IirReceivedData;
        }
        else if ((_interruptEnable & IerTransmitterEmpty) != 0 && _transmitterEmptyPending)
        {
            id = IirTransmitterEmpty;
        }
        else if ((_interruptEnable & IerModemStatus) != 0 && _modemDeltas != 0)
        {
            id = IirModemStatus;
        }
        else
        {
            id = IirNoInterrupt;
        }

        return FifosEnabled ? (byte)(id | IirFifosEnabled) : id;
    }

    /// <summary>
    /// Drives the IRQ wire. On a PC the UART's interrupt output reaches the bus only through a
    /// buffer enabled by OUT2, and loopback forces OUT2 inactive.
    /// </summary>
    private void UpdateInterrupt()
    {
        bool pending = (InterruptIdentification() & IirNoInterrupt) == 0;
        bool level = pending && (_modemControl & (McrOut2 | McrLoopback)) == McrOut2;
        if (level != _lineAsserted)
        {
            _lineAsserted = level;
            _interrupt.Set(level);
        }
    }

    public string SnapshotTag => "uart-3f8";

    /// <summary>The registers and both FIFOs (typed input not yet read stays queued); not the host side (output stream, counters).</summary>
    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            _receiveFifo.Save(w);
            _hostInput.Save(w);
            w.Write(_lineAsserted);
            w.Write(_divisor);
            foreach (byte b in (ReadOnlySpan<byte>)[_receiveBuffer, _interruptEnable, _fifoControl, _lineControl, _modemControl, _lineStatus, _modemLines, _modemDeltas, _scratch])
            {
                w.Write(b);
            }

            w.Write(_receiveTriggerLevel);
            w.Write(_transmitterEmptyPending);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            _receiveFifo.Load(r);
            _hostInput.Load(r);
            _lineAsserted = r.ReadBoolean();
            _divisor = r.ReadUInt16();
            _receiveBuffer = r.ReadByte();
            _interruptEnable = r.ReadByte();
            _fifoControl = r.ReadByte();
            _lineControl = r.ReadByte();
            _modemControl = r.ReadByte();
            _lineStatus = r.ReadByte();
            _modemLines = r.ReadByte();
            _modemDeltas = r.ReadByte();
            _scratch = r.ReadByte();
            _receiveTriggerLevel = r.ReadInt32();
            if (_receiveTriggerLevel is not (1 or 4 or 8 or 14))
            {
                throw r.Invalid($"receive trigger level {_receiveTriggerLevel}");
            }

            _transmitterEmptyPending = r.ReadBoolean();
        }
    }
}
