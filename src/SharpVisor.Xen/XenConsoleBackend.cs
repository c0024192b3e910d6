using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// Dom0's half of the PV console (xen/include/public/io/console.h), Linux's hvc0: the guest
/// writes into the ring's `out` half and sends on the console event channel; the back end copies
/// out[out_cons..out_prod) to the console and advances out_cons. Input goes the other way through
/// `in`. Ring indices are free-running; a producer more than a ring ahead of the consumer is a
/// broken (or hostile) front end: the back end stops serving it and says so once.
/// </summary>
public sealed class XenConsoleBackend
{
    public const int InSize = 1024;
    public const int OutSize = 2048;
    private const int OutOffset = 1024;
    private const int InConsOffset = 3072;
    private const int InProdOffset = 3076;
    private const int OutConsOffset = 3080;
    private const int OutProdOffset = 3084;

    private readonly XenByteRing _in;
    private readonly XenByteRing _out;

    private readonly XenDomain _domain;
    private readonly GuestMemory _memory;
    private readonly Action<ReadOnlyMemory<byte>> _output;
    private readonly Action<string>? _log;
    private readonly object _lock = new();
    private bool _failed;

    /// <summary>Opens the console's event channel and publishes it (HVM_PARAM_CONSOLE_EVTCHN); the ring is at <paramref name="ringAddress"/>.</summary>
    public XenConsoleBackend(XenDomain domain, ulong ringAddress, Action<ReadOnlyMemory<byte>> output, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(output);
        _domain = domain;
        _memory = domain.Memory;
        if ((ringAddress & 0xFFF) != 0 || !_memory.IsValid(ringAddress, 4096))
        {
            throw new ArgumentException($"console ring 0x{ringAddress:x} is not a page of guest RAM");
        }

        _in = new XenByteRing(_memory, ringAddress, 0, InSize, InConsOffset, InProdOffset);
        _out = new XenByteRing(_memory, ringAddress, OutOffset, OutSize, OutConsOffset, OutProdOffset);
        _output = output;
        _log = log;
        _memory.Fill(ringAddress, 4096, 0);
        Port = domain.OpenBackendPort(OnGuestNotify);
        domain.SetParam(HvmParam.ConsolePfn, ringAddress >> 12);
        domain.SetParam(HvmParam.ConsoleEvtchn, (ulong)Port);
    }

    public int Port { get; }

    public long BytesOut { get; private set; }

    public bool Failed => _failed;

    /// <summary>The guest sent on the console port: drain what it wrote.</summary>
    private void OnGuestNotify()
    {
        byte[]? data = null;
        lock (_lock)
        {
            if (_failed)
            {
                return;
            }

            if (!_out.TryGetUnread(out int pending))
            {
                Fail($"out ring indices {_out.Describe()} are more than a ring apart");
                return;
            }

            if (pending != 0)
            {
                data = new byte[pending];
                _out.TryRead(data, out int read);
                data = data[..read];
                BytesOut += read;
            }
        }

        if (data is { Length: > 0 })
        {
            _output(data);
            _domain.NotifyGuest(Port);
        }
    }

    /// <summary>Terminal input for the guest: as much as fits in the `in` ring; returns the bytes taken.</summary>
    public int WriteInput(ReadOnlySpan<byte> input)
    {
        int taken;
        lock (_lock)
        {
            if (_failed)
            {
                return 0;
            }

            if (!_in.TryWrite(input, out taken))
            {
                Fail($"in ring indices {_in.Describe()} are more than a ring apart");
                return 0;
            }
        }

        if (taken > 0)
        {
            _domain.NotifyGuest(Port);
        }

        return taken;
    }

    private void Fail(string reason)
    {
        _failed = true;
        _log?.Invoke($"xen console: {reason}; the console back end stops");
    }
}
