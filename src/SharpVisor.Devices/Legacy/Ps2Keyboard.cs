using SharpVisor.Machine.Snapshots;
namespace SharpVisor.Devices.Legacy;

/// <summary>
/// A PS/2 (MF2) keyboard on the i8042's keyboard port. It answers the host's commands as a real
/// keyboard does (each acknowledged with 0xFA) and sends scan codes, in its current scan code
/// set (2 after reset), for the keys SharpVisor presses. Bytes for the host wait in the
/// keyboard's 16-byte buffer until the controller takes them.
/// </summary>
/// <remarks>
/// Not thread-safe: the <see cref="I8042Controller"/> that owns it serializes every call.
/// Everything the host writes is checked: parameters out of range are answered with 0xFE
/// (resend), and a command byte where a parameter was expected starts that command.
/// </remarks>
public sealed class Ps2Keyboard
{
    /// <summary>A real keyboard's buffer: 16 bytes.</summary>
    public const int BufferCapacity = 16;

    // Commands (host to keyboard).
    public const byte SetLeds = 0xED;
    public const byte Echo = 0xEE;
    public const byte ScanCodeSetCommand = 0xF0;
    public const byte GetId = 0xF2;
    public const byte SetTypematic = 0xF3;
    public const byte Enable = 0xF4;
    public const byte ResetDisable = 0xF5;
    public const byte SetDefaults = 0xF6;
    public const byte SetAllTypematic = 0xF7;
    public const byte SetAllMakeBreakTypematic = 0xFA;
    public const byte SetKeyTypematic = 0xFB;
    public const byte SetKeyMakeBreak = 0xFC;
    public const byte SetKeyMake = 0xFD;
    public const byte ResendCommand = 0xFE;
    public const byte Reset = 0xFF;

    // Replies (keyboard to host).
    public const byte Ack = 0xFA;
    public const byte Resend = 0xFE;
    public const byte BatPassed = 0xAA;       // basic assurance test passed, after reset
    public const byte EchoReply = 0xEE;
    public const byte IdFirst = 0xAB;
    public const byte IdSecond = 0x83;   // MF2 keyboard; 0x41 once the controller translates it
    public const byte OverrunSet1 = 0xFF;
    public const byte OverrunSet23 = 0x00;

    private const byte DefaultScanCodeSet = 2;

    // Key presses leave room for the longest reply (ACK, 0xAB, 0x83) and one overrun code, so
    // the host's commands are answered even when it has not read the keys.
    private const int ReplyHeadroom = 4;

    private readonly ByteQueue _buffer = new(BufferCapacity);
    private byte _pendingCommand;
    private byte _lastSent;
    private bool _overrunQueued;

    /// <summary>The scan code set keys are sent in: 1, 2 (the default) or 3.</summary>
    public int ScanCodeSet { get; private set; } = DefaultScanCodeSet;

    /// <summary>Whether keys are sent: true after reset and 0xF4, false after 0xF5.</summary>
    public bool Scanning { get; private set; } = true;

    public bool HasData => !_buffer.IsEmpty;

    public int BufferedBytes => _buffer.Count;

    /// <summary>The controller takes the next byte for the host.</summary>
    public bool TryRead(out byte value)
    {
        if (!_buffer.TryDequeue(out value))
        {
            return false;
        }

        _lastSent = value;
        if (_buffer.IsEmpty)
        {
            _overrunQueued = false;
        }

        return true;
    }

    /// <summary>A byte from the host (through the controller's data port): a command or a command's parameter.</summary>
    public void Write(byte value)
    {
        if (_pendingCommand != 0)
        {
            byte command = _pendingCommand;
            if (TryParameter(command, value))
            {
                _pendingCommand = 0;
                return;
            }

            if (value < SetLeds)
            {
                // Out of range: ask for it again, still waiting for the parameter.
                Reply(Resend);
                return;
            }

            // A command byte instead of the parameter: the keyboard drops the old command.
            _pendingCommand = 0;
        }

        Command(value);
    }

    /// <summary>
    /// Presses <paramref name="keys"/> in order and releases them in reverse order, as a user
    /// typing a chord (Ctrl, Alt, Del). All or nothing: false, and nothing queued but an overrun
    /// code, when the keyboard is not scanning or its buffer has no room (the host does not read).
    /// </summary>
    public bool TryTypeChord(params ReadOnlySpan<Ps2Key> keys)
    {
        if (!Scanning)
        {
            return false;
        }

        var bytes = new List<byte>();
        foreach (Ps2Key key in keys)
        {
            bytes.AddRange(key.Make(ScanCodeSet));
        }

        for (int i = keys.Length - 1; i >= 0; i--)
        {
            bytes.AddRange(keys[i].Break(ScanCodeSet));
        }

        if (_buffer.Count + bytes.Count > BufferCapacity - ReplyHeadroom)
        {
            // A real keyboard puts an overrun code where the keys would have gone (once).
            if (!_overrunQueued)
            {
                _overrunQueued = _buffer.TryEnqueue(ScanCodeSet == 1 ? OverrunSet1 : OverrunSet23);
            }

            return false;
        }

        foreach (byte b in bytes)
        {
            _buffer.TryEnqueue(b);
        }

        return true;
    }

    private void Command(byte command)
    {
        switch (command)
        {
            case SetLeds:
            case SetTypematic:
            case ScanCodeSetCommand:
            case SetKeyTypematic:
            case SetKeyMakeBreak:
            case SetKeyMake:
                _pendingCommand = command;
                Reply(Ack);
                break;

            case Echo:
                Reply(EchoReply);
                break;

            case GetId:
                Reply(Ack);
                Reply(IdFirst);
                Reply(IdSecond);
                break;

            case Enable:
                _buffer.Clear();
                Scanning = true;
                Reply(Ack);
                break;

            case ResetDisable:
                _buffer.Clear();
                LoadDefaults();
                Scanning = false;
                Reply(Ack);
                break;

            case SetDefaults:
                _buffer.Clear();
                LoadDefaults();
                Scanning = true;
                Reply(Ack);
                break;

            case >= SetAllTypematic and <= SetAllMakeBreakTypematic:
                // Set 3 key modes: keys are always sent make/break here; nothing to change.
                Reply(Ack);
                break;

            case ResendCommand:
                Reply(_lastSent);
                break;

            case Reset:
                _buffer.Clear();
                LoadDefaults();
                Scanning = true;
                Reply(Ack);
                Reply(BatPassed);
                break;

            default:
                Reply(Resend);
                break;
        }
    }

    private bool TryParameter(byte command, byte value)
    {
        switch (command)
        {
            case SetLeds when value <= 0x07:
            case SetTypematic when value <= 0x7F:
                // LEDs and the repeat rate have nothing to drive here.
                Reply(Ack);
                return true;

            case ScanCodeSetCommand when value == 0:
                Reply(Ack);
                Reply((byte)ScanCodeSet);
                return true;

            case ScanCodeSetCommand when value <= 3:
                ScanCodeSet = value;
                Reply(Ack);
                return true;

            case SetKeyTypematic or SetKeyMakeBreak or SetKeyMake when value < SetLeds:
                Reply(Ack);
                return true;

            default:
                return false;
        }
    }

    private void LoadDefaults()
    {
        _pendingCommand = 0;
        _overrunQueued = false;
        ScanCodeSet = DefaultScanCodeSet;
    }

    private void Reply(byte value)
    {
        // Replies fit in the headroom key presses leave; a host that never reads loses the newest.
        _ = _buffer.TryEnqueue(value);
    }

    public void Save(SnapshotWriter w)
    {
        _buffer.Save(w);
        w.Write(_pendingCommand);
        w.Write(_lastSent);
        w.Write(_overrunQueued);
        w.Write(ScanCodeSet);
        w.Write(Scanning);
    }

    public void Load(SnapshotReader r)
    {
        _buffer.Load(r);
        _pendingCommand = r.ReadByte();
        _lastSent = r.ReadByte();
        _overrunQueued = r.ReadBoolean();
        ScanCodeSet = r.ReadInt32();
        if (ScanCodeSet is < 1 or > 3)
        {
            throw r.Invalid($"scan code set {ScanCodeSet}");
        }

        Scanning = r.ReadBoolean();
    }
}
