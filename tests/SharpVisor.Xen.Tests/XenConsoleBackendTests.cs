using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

public sealed class XenConsoleBackendTests : IDisposable
{
    private const ulong Ring = 0x50000;
    private const ulong SharedInfo = 0x10000;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly FakeHypervisorHost _host = new();
    private readonly XenDomain _xen;
    private readonly List<byte> _output = [];
    private readonly List<string> _log = [];
    private readonly XenConsoleBackend _console;
    private readonly FakeHypercallContext _cpu;

    public XenConsoleBackendTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions());
        _xen.Connect(_host);
        _console = new XenConsoleBackend(_xen, Ring, b => _output.AddRange(b.ToArray()), _log.Add);
        _cpu = new FakeHypercallContext(_memory);
        _memory.Write<ushort>(0x20000, XenDomain.DomidSelf);
        _memory.Write<uint>(0x20004, 0);
        _memory.Write<ulong>(0x20010, SharedInfo >> 12);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.MemoryOp, 7, 0x20000));
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void GuestOutputDrainsAcrossTheRingWrap()
    {
        Assert.Equal(Ring >> 12, _xen.GetParam(HvmParam.ConsolePfn));
        Assert.Equal((ulong)_console.Port, _xen.GetParam(HvmParam.ConsoleEvtchn));
        _memory.Write<uint>(Ring + 3080, 2046);   // out_cons: the next bytes wrap
        WriteOut(2046, "hello"u8);
        Send();
        Assert.Equal("hello"u8.ToArray(), _output.ToArray());
        Assert.Equal(2051u, _memory.Read<uint>(Ring + 3080));
        Assert.NotEqual(0UL, _memory.Read<ulong>(SharedInfo + 2048) & (1UL << _console.Port));   // the guest is notified
    }

    [Fact]
    public void InputFillsTheInRingUpToItsSize()
    {
        Assert.Equal(5, _console.WriteInput("ls -l"u8));
        Assert.Equal(5u, _memory.Read<uint>(Ring + 3076));
        Assert.Equal("ls -l"u8.ToArray(), _memory.GetSpan(Ring, 5).ToArray());
        Assert.Equal(1019, _console.WriteInput(new byte[2000]));   // the rest waits for the guest
    }

    [Fact]
    public void HostileIndicesFailTheBackendOnce()
    {
        _memory.Write<uint>(Ring + 3084, 100_000);   // out_prod far beyond out_cons
        Send();
        Assert.True(_console.Failed);
        Assert.Empty(_output);
        Send();
        Assert.Single(_log);
    }

    private void WriteOut(uint producer, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            _memory.Write(Ring + 1024 + (producer++ & 2047), b);
        }

        _memory.Write(Ring + 3084, producer);
    }

    private void Send()
    {
        _memory.Write<uint>(0x20100, (uint)_console.Port);
        Assert.Equal(0, _cpu.Call(_xen, HypercallOp.EventChannelOp, 4, 0x20100));
    }
}
