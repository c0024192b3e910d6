using System.Net.Sockets;
using SharpVisor.Devices.Virtio.Vsock;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>
/// The virtio-vsock device driven through its rings as Linux's driver does, against real Unix
/// sockets: guest connections, and what a hostile guest may send. No worker: queue work runs
/// on the notifying thread, so each step's effect is visible when Notify returns.
/// </summary>
public sealed class VsockDeviceTests : IDisposable
{
    private const ulong GuestCid = 3;
    private const uint GuestPort = 1234;
    private const uint HostPort = 5000;

    private readonly string _directory = Directory.CreateTempSubdirectory("vsock-").FullName;
    private readonly DeviceRig _rig;
    private int _txPage;
    private int _used;

    public VsockDeviceTests()
    {
        _rig = new DeviceRig(p => new VirtioVsockDevice(p.Memory, GuestCid, UdsPath));
        for (int i = 0; i < 8; i++)
        {
            PostReceiveBuffer(i);
        }
    }

    private string UdsPath => Path.Combine(_directory, "v.sock");

    private VirtioVsockDevice Device => (VirtioVsockDevice)_rig.Device;

    [Fact]
    public void TheDeviceIsVirtioSocketWithTheGuestCidInItsConfiguration()
    {
        Assert.Equal(0x1053, _rig.Platform.ConfigRead16(_rig.Driver.Slot, 2));
        Assert.Equal(GuestCid, _rig.Driver.Read64(_rig.Driver.DeviceConfig));
        Assert.True(File.Exists(UdsPath), "the host socket is bound when the device is built");
    }

    [Fact]
    public void AGuestConnectionGoesToUdsPathPortAndCarriesDataBothWays()
    {
        using Socket listener = ListenOn($"{UdsPath}_{HostPort}");
        SendFromGuest(VsockOp.Request, GuestPort, HostPort);
        VsockPacketHeader response = NextReceived();
        Assert.Equal(VsockOp.Response, response.Op);
        Assert.Equal((VirtioVsockDevice.HostCid, GuestCid, HostPort, GuestPort), (response.SourceCid, response.DestinationCid, response.SourcePort, response.DestinationPort));
        Assert.Equal(VirtioVsockDevice.ConnectionBufferSize, response.BufferAllocation);

        using Socket host = listener.Accept();
        SendFromGuest(VsockOp.ReadWrite, GuestPort, HostPort, "hello"u8.ToArray());
        byte[] got = new byte[16];
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(got, 0, host.Receive(got)));
        Assert.Equal(1, Device.ConnectionCount);

        // The guest closes: the device answers RST once nothing is left for the host, and forgets the connection.
        SendFromGuest(VsockOp.Shutdown, GuestPort, HostPort, flags: VsockPacketHeader.ShutdownBoth);
        Assert.Equal(VsockOp.Reset, NextReceived().Op);
        Assert.Equal(0, Device.ConnectionCount);
        Assert.Equal(0, host.Receive(got));
    }

    [Fact]
    public void AHostProgramConnectsWithConnectPortAndGetsOkThenData()
    {
        Device.StartWorker();
        using var host = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 10_000 };
        host.Connect(new UnixDomainSocketEndPoint(UdsPath));
        host.Send("CONNECT 6000\n"u8);
        VsockPacketHeader request = WaitReceived();
        Assert.Equal(VsockOp.Request, request.Op);
        Assert.Equal((VirtioVsockDevice.FirstLocalPort, 6000u), (request.SourcePort, request.DestinationPort));

        SendFromGuest(VsockOp.Response, 6000, request.SourcePort);
        byte[] line = new byte[32];
        Assert.Equal($"OK {VirtioVsockDevice.FirstLocalPort}\n", System.Text.Encoding.ASCII.GetString(line, 0, host.Receive(line)));

        host.Send("ping\n"u8);
        VsockPacketHeader data = WaitReceived();
        Assert.Equal(VsockOp.ReadWrite, data.Op);
        Assert.Equal(5u, data.Length);
        Assert.Equal(0u, data.ForwardCount); // the OK line was ours, not guest bytes forwarded
    }

    [Fact]
    public void AConnectionToAPortNobodyListensOnIsReset()
    {
        SendFromGuest(VsockOp.Request, GuestPort, 7777);
        VsockPacketHeader reset = NextReceived();
        Assert.Equal(VsockOp.Reset, reset.Op);
        Assert.Equal((7777u, GuestPort), (reset.SourcePort, reset.DestinationPort));
        Assert.Equal(0, Device.ConnectionCount);
    }

    [Fact]
    public void MisaddressedAndMalformedPacketsAreDroppedAndTheDeviceLivesOn()
    {
        SendFromGuest(VsockOp.Request, GuestPort, HostPort, sourceCid: 9);             // spoofed source CID
        SendFromGuest(VsockOp.Request, GuestPort, HostPort, destinationCid: 5);        // not the host
        SendFromGuest(VsockOp.ReadWrite, GuestPort, HostPort, new byte[8], length: 4096); // length beyond its buffer
        SendRaw(new byte[20]);                                                            // shorter than a header
        Assert.Equal(4, Device.DroppedPackets);
        Assert.Equal(0, _rig.Rings[0].UsedIndex);

        // Data on a connection that does not exist is answered with RST; an RST is never answered.
        SendFromGuest(VsockOp.ReadWrite, GuestPort, HostPort, "x"u8.ToArray());
        Assert.Equal(VsockOp.Reset, NextReceived().Op);
        SendFromGuest(VsockOp.Reset, GuestPort, HostPort);
        Assert.Equal(1, _rig.Rings[0].UsedIndex);
        Assert.False(Device.NeedsReset);
    }

    [Fact]
    public void DataBeyondTheAdvertisedCreditResetsTheConnection()
    {
        using Socket listener = ListenOn($"{UdsPath}_{HostPort}");
        SendFromGuest(VsockOp.Request, GuestPort, HostPort);
        Assert.Equal(VsockOp.Response, NextReceived().Op);
        using Socket host = listener.Accept(); // and never reads: the socket buffer fills, then the device's

        byte[] chunk = new byte[VirtioVsockDevice.MaxPayload];
        VsockOp last = VsockOp.Invalid;
        for (int i = 0; i < 64 && Device.CreditViolations == 0; i++)
        {
            SendFromGuest(VsockOp.ReadWrite, GuestPort, HostPort, chunk);
            while (_used < _rig.Rings[0].UsedIndex)
            {
                last = NextReceived().Op;
                PostReceiveBuffer((_used - 1) % 8);
            }
        }

        Assert.Equal(1, Device.CreditViolations);
        Assert.Equal(VsockOp.Reset, last);
        Assert.Equal(0, Device.ConnectionCount);
    }

    [Fact]
    public void RandomPacketsFromAHostileGuestNeverFailTheHost()
    {
        using Socket listener = ListenOn($"{UdsPath}_{HostPort}");
        var random = new Random(16);
        VsockOp[] ops = Enum.GetValues<VsockOp>();
        for (int i = 0; i < 2000; i++)
        {
            byte[] data = new byte[random.Next(0, 300)];
            random.NextBytes(data);
            uint length = random.Next(4) == 0 ? (uint)random.Next() : (uint)data.Length;
            var h = new VsockPacketHeader(GuestCid, VirtioVsockDevice.HostCid, (uint)random.Next(1, 4), random.Next(2) == 0 ? HostPort : (uint)random.Next(),
                length, (ushort)(random.Next(8) == 0 ? random.Next(0, 4) : VsockPacketHeader.TypeStream), ops[random.Next(ops.Length)] + (ushort)(random.Next(10) == 0 ? 9 : 0),
                (uint)random.Next(), (uint)random.Next(), (uint)random.Next());
            byte[] packet = new byte[VsockPacketHeader.Size + data.Length];
            h.Write(packet);
            data.CopyTo(packet, VsockPacketHeader.Size);
            SendRaw(packet);
            while (_used < _rig.Rings[0].UsedIndex)
            {
                NextReceived();
                PostReceiveBuffer((_used - 1) % 8);
            }

            while (listener.Poll(0, SelectMode.SelectRead))
            {
                listener.Accept().Dispose(); // the host program hangs up at once
            }
        }

        Assert.False(Device.NeedsReset, Device.FailureReason);
        Assert.InRange(Device.ConnectionCount, 0, VirtioVsockDevice.MaxConnections);
    }

    public void Dispose()
    {
        _rig.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private static Socket ListenOn(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(path));
        s.Listen(8);
        return s;
    }

    private static ulong ReceivePage(int slot) => DeviceRig.Data(slot * 2);

    private void PostReceiveBuffer(int slot) =>
        _rig.Rings[0].AddChain((ReceivePage(slot), VsockPacketHeader.Size, true), (ReceivePage(slot) + 0x100, 1024, true));

    private VsockPacketHeader WaitReceived()
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(10);
        while (_rig.Rings[0].UsedIndex <= _used && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }

        return NextReceived();
    }

    private VsockPacketHeader NextReceived()
    {
        Assert.True(_rig.Rings[0].UsedIndex > _used, "the device answered in a receive buffer");
        (uint id, uint length) = _rig.Rings[0].Used(_used++);
        Assert.True(length >= VsockPacketHeader.Size);
        ulong at = _rig.Rings[0].DescriptorTable + (16UL * id);
        ulong address = _rig.Platform.Memory.Read<ulong>(at);
        return VsockPacketHeader.Read(_rig.Platform.Memory.GetSpan(address, VsockPacketHeader.Size));
    }

    private void SendFromGuest(VsockOp op, uint sourcePort, uint destinationPort, byte[]? data = null, uint flags = 0,
        ulong sourceCid = GuestCid, ulong destinationCid = VirtioVsockDevice.HostCid, uint? length = null)
    {
        data ??= [];
        var h = new VsockPacketHeader(sourceCid, destinationCid, sourcePort, destinationPort, length ?? (uint)data.Length,
            VsockPacketHeader.TypeStream, op, flags, 64 * 1024, 0);
        byte[] packet = new byte[VsockPacketHeader.Size + data.Length];
        h.Write(packet);
        data.CopyTo(packet, VsockPacketHeader.Size);
        SendRaw(packet);
    }

    private void SendRaw(byte[] packet)
    {
        // Transmit buffers live above the receive pages; each packet gets fresh pages.
        ulong address = DeviceRig.Data(64 + (_txPage * 17 % 1024));
        _txPage++;
        _rig.Platform.Memory.Write(address, packet.AsSpan());
        _rig.Rings[1].AddChain((address, (uint)packet.Length, false));
        _rig.Driver.Notify(1);
    }
}
