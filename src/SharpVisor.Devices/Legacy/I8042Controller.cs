using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Legacy;

/// <summary>
/// The PC keyboard controller (Intel 8042): data port 0x60, status/command port 0x64, a
/// <see cref="Ps2Keyboard"/> on the keyboard port and an empty auxiliary (mouse) port. Enough
/// for Linux's i8042 and atkbd drivers to probe, for the host to type Ctrl-Alt-Del
/// (<see cref="InjectCtrlAltDel"/>), and for <c>reboot=k</c>: pulsing the output port's reset
/// line (command 0xFE) resets the machine.
/// </summary>
/// <remarks>
/// Commands complete at once, so the input buffer is never full (IBF stays 0). The output
/// buffer holds one byte; when the guest has read it the controller refills it, first from
/// its own results (a small bounded queue), then from the keyboard — unless the command byte
/// disables the keyboard interface — through the set 2 → set 1 translation when the command
/// byte asks for it. The keyboard (IRQ 1) or aux (IRQ 12) line is raised for a full output
/// buffer when the command byte enables that interrupt.
/// </remarks>
public sealed class I8042Controller : ISnapshotable
{
    public const ushort DataPortAddress = 0x60;
    public const ushort CommandPortAddress = 0x64;
    public const uint KeyboardIrq = 1;
    public const uint AuxIrq = 12;

    // Status register.
    public const byte StatusOutputFull = 0x01;
    public const byte StatusInputFull = 0x02;
    public const byte StatusSystemFlag = 0x04;
    public const byte StatusLastWriteWasCommand = 0x08;
    public const byte StatusKeyboardUnlocked = 0x10;
    public const byte StatusAuxData = 0x20;
    public const byte StatusTimeout = 0x40;

    // Command byte (controller RAM byte 0).
    public const byte CommandByteKeyboardInterrupt = 0x01;
    public const byte CommandByteAuxInterrupt = 0x02;
    public const byte CommandByteSystemFlag = 0x04;
    public const byte CommandByteKeyboardDisabled = 0x10;
    public const byte CommandByteAuxDisabled = 0x20;
    public const byte CommandByteTranslate = 0x40;

    // Controller commands (written to 0x64).
    public const byte CommandReadCommandByte = 0x20;
    public const byte CommandWriteCommandByte = 0x60;
    public const byte CommandPasswordInstalled = 0xA4;
    public const byte CommandDisableAux = 0xA7;
    public const byte CommandEnableAux = 0xA8;
    public const byte CommandTestAux = 0xA9;
    public const byte CommandSelfTest = 0xAA;
    public const byte CommandTestKeyboard = 0xAB;
    public const byte CommandDisableKeyboard = 0xAD;
    public const byte CommandEnableKeyboard = 0xAE;
    public const byte CommandReadInputPort = 0xC0;
    public const byte CommandReadOutputPort = 0xD0;
    public const byte CommandWriteOutputPort = 0xD1;
    public const byte CommandWriteKeyboardOutput = 0xD2;
    public const byte CommandWriteAuxOutput = 0xD3;
    public const byte CommandWriteAux = 0xD4;
    public const byte CommandDisableA20 = 0xDD;
    public const byte CommandEnableA20 = 0xDF;
    public const byte CommandReadTestInputs = 0xE0;
    public const byte CommandPulseResetLine = 0xFE;

    public const byte SelfTestPassed = 0x55;
    public const byte InterfaceTestPassed = 0x00;

    public const byte OutputPortReset = 0x01; // active low: writing 0 resets the CPU
    public const byte OutputPortA20 = 0x02;

    /// <summary>What a write to the empty aux port reads back, flagged with a timeout.</summary>
    public const byte AuxTimeoutReply = 0xFE;

    private const int ResultQueueCapacity = 16;

    private readonly object _lock = new();
    private readonly InterruptLine _keyboardInterrupt;
    private readonly InterruptLine _auxInterrupt;
    private readonly MachineControl _control;
    private readonly Queue<OutputByte> _results = new();
    private readonly Ps2Keyboard _keyboard = new();
    private readonly ScanCodeTranslator _translator = new();
    private readonly byte[] _ram = new byte[32];

    private OutputByte? _outputBuffer;

    private byte _outputPort = 0xCF; // reset inactive, A20 on, keyboard clock/data high
    private byte _lastOutput;
    private byte _pendingCommand;
    private bool _lastWriteWasCommand;
    private bool _keyboardLineAsserted;
    private bool _auxLineAsserted;

    public I8042Controller(InterruptLine keyboardInterrupt, InterruptLine auxInterrupt, MachineControl control)
    {
        ArgumentNullException.ThrowIfNull(keyboardInterrupt);
        ArgumentNullException.ThrowIfNull(auxInterrupt);
        ArgumentNullException.ThrowIfNull(control);
        _keyboardInterrupt = keyboardInterrupt;
        _auxInterrupt = auxInterrupt;
        _control = control;

        // As firmware leaves it: keyboard interrupt on, self-test passed, scan code translation on, aux off.
        _ram[0] = CommandByteKeyboardInterrupt | CommandByteSystemFlag | CommandByteAuxDisabled | CommandByteTranslate;
        DataPort = new Port(this, isCommandPort: false);
        CommandPort = new Port(this, isCommandPort: true);
    }

    /// <summary>Port 0x60: output buffer (read), keyboard data and command parameters (write).</summary>
    public IPortIoDevice DataPort { get; }

    /// <summary>Port 0x64: status register (read), controller commands (write).</summary>
    public IPortIoDevice CommandPort { get; }

    public byte CommandByte
    {
        get
        {
            lock (_lock)
            {
                return _ram[0];
            }
        }
    }

    /// <summary>Whether the keyboard would send scan codes (it was enabled, not reset-disabled).</summary>
    public bool KeyboardScanning
    {
        get
        {
            lock (_lock)
            {
                return _keyboard.Scanning;
            }
        }
    }

    /// <summary>The scan code set the keyboard sends (before the controller's translation).</summary>
    public int KeyboardScanCodeSet
    {
        get
        {
            lock (_lock)
            {
                return _keyboard.ScanCodeSet;
            }
        }
    }

    /// <summary>
    /// Types Ctrl-Alt-Del on the keyboard: left Ctrl, left Alt and Delete go down, then up
    /// (set 1 as the guest reads it by default: 1D 38 E0 53 E0 D3 B8 9D). False, with nothing
    /// typed, when the guest has disabled the keyboard or has not read what it sent before.
    /// </summary>
    public bool InjectCtrlAltDel()
    {
        lock (_lock)
        {
            bool typed = _keyboard.TryTypeChord(Ps2Key.LeftCtrl, Ps2Key.LeftAlt, Ps2Key.Delete);
            Refill();
            UpdateInterrupts();
            return typed;
        }
    }

    public void Register(PortIoBus bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.Register(DataPortAddress, 1, DataPort, "i8042 data");
        bus.Register(CommandPortAddress, 1, CommandPort, "i8042 status/command");
    }

    private byte ReadStatus()
    {
        lock (_lock)
        {
            byte status = StatusKeyboardUnlocked;
            if ((_ram[0] & CommandByteSystemFlag) != 0)
            {
                status |= StatusSystemFlag;
            }

            if (_lastWriteWasCommand)
            {
                status |= StatusLastWriteWasCommand;
            }

            if (_outputBuffer is OutputByte head)
            {
                status |= StatusOutputFull;
                if (head.FromAux)
                {
                    status |= StatusAuxData;
                }

                if (head.Timeout)
                {
                    status |= StatusTimeout;
                }
            }

            return status;
        }
    }

    private byte ReadData()
    {
        lock (_lock)
        {
            if (_outputBuffer is OutputByte head)
            {
                _lastOutput = head.Value;
                _outputBuffer = null;

                // Drop the lines so that a following byte raises a fresh edge.
                SetLines(keyboard: false, aux: false);
                Refill();
                UpdateInterrupts();
            }

            // An empty output buffer reads as the last byte, as on the real part.
            return _lastOutput;
        }
    }

    private void WriteData(byte value)
    {
        bool reset = false;
        lock (_lock)
        {
            _lastWriteWasCommand = false;
            byte command = _pendingCommand;
            _pendingCommand = 0;
            switch (command)
            {
                case >= CommandWriteCommandByte and <= CommandWriteCommandByte + 0x1F:
                    _ram[command - CommandWriteCommandByte] = value;
                    break;

                case CommandWriteOutputPort:
                    _outputPort = value;
                    reset = (value & OutputPortReset) == 0;
                    break;

                case CommandWriteKeyboardOutput:
                    Enqueue(value, fromAux: false);
                    break;

                case CommandWriteAuxOutput:
                    Enqueue(value, fromAux: true);
                    break;

                case CommandWriteAux:
                    // No mouse is attached: the controller gives up on the aux device and
                    // reports a timeout, so Linux's psmouse probe fails at once instead of waiting.
                    Enqueue(AuxTimeoutReply, fromAux: true, timeout: true);
                    break;

                default:
                    // Sending to the keyboard re-enables its interface.
                    _ram[0] &= unchecked((byte)~CommandByteKeyboardDisabled);
                    _translator.Reset();
                    _keyboard.Write(value);
                    break;
            }

            Refill();
            UpdateInterrupts();
        }

        if (reset)
        {
            _control.Reset("guest reset the CPU through the i8042 output port");
        }
    }

    private void WriteCommand(byte command)
    {
        bool reset = false;
        lock (_lock)
        {
            _lastWriteWasCommand = true;
            _pendingCommand = 0;
            switch (command)
            {
                case >= CommandReadCommandByte and <= CommandReadCommandByte + 0x1F:
                    Enqueue(_ram[command - CommandReadCommandByte], fromAux: false);
                    break;

                case >= CommandWriteCommandByte and <= CommandWriteCommandByte + 0x1F:
                case CommandWriteOutputPort:
                case CommandWriteKeyboardOutput:
                case CommandWriteAuxOutput:
                case CommandWriteAux:
                    // The parameter follows on the data port.
                    _pendingCommand = command;
                    break;

                case CommandPasswordInstalled:
                    Enqueue(0xF1, fromAux: false); // no password installed
                    break;

                case CommandDisableAux:
                    _ram[0] |= CommandByteAuxDisabled;
                    break;

                case CommandEnableAux:
                    _ram[0] &= unchecked((byte)~CommandByteAuxDisabled);
                    break;

                case CommandTestAux:
                case CommandTestKeyboard:
                    Enqueue(InterfaceTestPassed, fromAux: false);
                    break;

                case CommandSelfTest:
                    _ram[0] |= CommandByteSystemFlag;
                    Enqueue(SelfTestPassed, fromAux: false);
                    break;

                case CommandDisableKeyboard:
                    _ram[0] |= CommandByteKeyboardDisabled;
                    break;

                case CommandEnableKeyboard:
                    _ram[0] &= unchecked((byte)~CommandByteKeyboardDisabled);
                    break;

                case CommandReadInputPort:
                    Enqueue(0x80, fromAux: false); // keyboard not inhibited
                    break;

                case CommandReadOutputPort:
                    Enqueue(OutputPortValue(), fromAux: false);
                    break;

                case CommandDisableA20:
                    // A20 masking is not emulated (KVM does not either); the bit is only remembered.
                    _outputPort &= unchecked((byte)~OutputPortA20);
                    break;

                case CommandEnableA20:
                    _outputPort |= OutputPortA20;
                    break;

                case CommandReadTestInputs:
                    Enqueue(0x00, fromAux: false);
                    break;

                case >= 0xF0:
                    // Pulse output port bits 0-3 low where the command's bits are 0; bit 0 is reset.
                    reset = (command & OutputPortReset) == 0;
                    break;

                default:
                    // Unknown commands are ignored, as the real controller does.
                    break;
            }

            Refill();
            UpdateInterrupts();
        }

        if (reset)
        {
            _control.Reset("guest pulsed the i8042 reset line");
        }
    }

    private byte OutputPortValue()
    {
        byte value = (byte)(_outputPort & ~0x30);
        if (_outputBuffer is OutputByte head)
        {
            value |= head.FromAux ? (byte)0x20 : (byte)0x10;
        }

        return value;
    }

    /// <summary>Queues a byte the controller itself produces: a command's result, a loop-back, an aux timeout.</summary>
    private void Enqueue(byte value, bool fromAux, bool timeout = false)
    {
        // Results are a byte or two at most; a guest that never reads loses the newest ones.
        if (_results.Count < ResultQueueCapacity)
        {
            _results.Enqueue(new OutputByte(value, fromAux, timeout));
        }
    }

    /// <summary>Fills an empty output buffer: the controller's own results first, then the keyboard's bytes.</summary>
    private void Refill()
    {
        if (_outputBuffer is not null)
        {
            return;
        }

        if (_results.TryDequeue(out OutputByte result))
        {
            _outputBuffer = result;
            return;
        }

        // A disabled keyboard interface holds the keyboard's clock low: its bytes wait in the keyboard.
        if ((_ram[0] & CommandByteKeyboardDisabled) != 0)
        {
            return;
        }

        while (_keyboard.TryRead(out byte code))
        {
            if ((_ram[0] & CommandByteTranslate) == 0)
            {
                _outputBuffer = new OutputByte(code, FromAux: false, Timeout: false);
                return;
            }

            if (_translator.TryTranslate(code, out byte translated))
            {
                _outputBuffer = new OutputByte(translated, FromAux: false, Timeout: false);
                return;
            }
        }
    }

    private void UpdateInterrupts()
    {
        bool keyboard = false;
        bool aux = false;
        if (_outputBuffer is OutputByte head)
        {
            if (head.FromAux)
            {
                aux = (_ram[0] & CommandByteAuxInterrupt) != 0;
            }
            else
            {
                keyboard = (_ram[0] & CommandByteKeyboardInterrupt) != 0;
            }
        }

        SetLines(keyboard, aux);
    }

    private void SetLines(bool keyboard, bool aux)
    {
        if (keyboard != _keyboardLineAsserted)
        {
            _keyboardLineAsserted = keyboard;
            _keyboardInterrupt.Set(keyboard);
        }

        if (aux != _auxLineAsserted)
        {
            _auxLineAsserted = aux;
            _auxInterrupt.Set(aux);
        }
    }

    private readonly record struct OutputByte(byte Value, bool FromAux, bool Timeout);

    /// <summary>One of the controller's two I/O ports, each registered on its own.</summary>
    private sealed class Port : IPortIoDevice
    {
        private readonly I8042Controller _controller;
        private readonly bool _isCommandPort;

        public Port(I8042Controller controller, bool isCommandPort)
        {
            _controller = controller;
            _isCommandPort = isCommandPort;
        }

        public void Read(ushort offset, Span<byte> data)
        {
            if (data.IsEmpty)
            {
                return;
            }

            data.Fill(0xFF);
            if (offset == 0)
            {
                data[0] = _isCommandPort ? _controller.ReadStatus() : _controller.ReadData();
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            if (offset != 0 || data.IsEmpty)
            {
                return;
            }

            if (_isCommandPort)
            {
                _controller.WriteCommand(data[0]);
            }
            else
            {
                _controller.WriteData(data[0]);
            }
        }
    }

    public string SnapshotTag => "i8042";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            w.Write(_results.Count);
            foreach (OutputByte b in _results)
            {
                WriteOutputByte(w, b);
            }

            w.Write(_outputBuffer.HasValue);
            if (_outputBuffer is OutputByte head)
            {
                WriteOutputByte(w, head);
            }

            _keyboard.Save(w);
            _translator.Save(w);
            w.WriteBytes(_ram);
            w.Write(_lastOutput);
            w.Write(_pendingCommand);
            w.Write(_lastWriteWasCommand);
            w.Write(_keyboardLineAsserted);
            w.Write(_auxLineAsserted);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            int count = r.ReadInt32();
            if (count is < 0 or > 64)
            {
                throw r.Invalid($"{count} queued i8042 results");
            }

            _results.Clear();
            for (int i = 0; i < count; i++)
            {
                _results.Enqueue(ReadOutputByte(r));
            }

            _outputBuffer = r.ReadBoolean() ? ReadOutputByte(r) : null;
            _keyboard.Load(r);
            _translator.Load(r);
            r.ReadBytes(_ram.Length).CopyTo(_ram, 0);
            _lastOutput = r.ReadByte();
            _pendingCommand = r.ReadByte();
            _lastWriteWasCommand = r.ReadBoolean();
            _keyboardLineAsserted = r.ReadBoolean();
            _auxLineAsserted = r.ReadBoolean();
        }
    }

    private static void WriteOutputByte(SnapshotWriter w, OutputByte b)
    {
        w.Write(b.Value);
        w.Write(b.FromAux);
        w.Write(b.Timeout);
    }

    private static OutputByte ReadOutputByte(SnapshotReader r) => new(r.ReadByte(), r.ReadBoolean(), r.ReadBoolean());
}
