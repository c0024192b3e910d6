using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using SharpVisor.Devices.Virtio;
using SharpVisor.Host.Vmm;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>
/// virtio-net over a real TAP in a network namespace the test creates: the guest driver (played
/// in C#) sends a UDP datagram that a socket of the host's IP stack receives, and a datagram the
/// host sends lands in the guest's receive ring — bytes checked both ways.
/// </summary>
public sealed partial class TapNetworkTests
{
    private const string HostIp = "10.77.0.1";
    private const string GuestIp = "10.77.0.2";
    private const ushort HostPort = 7777;
    private const ushort GuestPort = 9999;
    private const int NetHeaderSize = 12;

    [Fact]
    public void GuestAndHostExchangeUdpThroughTheTapInANamespace()
    {
        if (NetworkNamespace.UnavailableReason is { } reason)
        {
            Assert.Fail($"SKIPPED — NEEDS root and /dev/net/tun: {reason}");
        }

        using NetworkNamespace ns = NetworkNamespace.Create();
        using var bench = new DeviceBench(DeviceBench.Configuration(), start: false);
        MacAddress guestMac = MacAddress.Parse("06:00:0a:4d:00:02");
        ns.Enter(() => bench.Devices.AddNetworkInterface(new NetworkInterfaceConfiguration { TapName = "svtap0", Mac = guestMac }, "net0"));
        bench.Devices.Start();

        ns.Exec("sysctl", "-qw", "net.ipv6.conf.svtap0.disable_ipv6=1");
        ns.Ip("addr", "add", $"{HostIp}/24", "dev", "svtap0");
        ns.Ip("link", "set", "svtap0", "up");
        ns.Ip("neigh", "add", GuestIp, "lladdr", guestMac.ToString(), "dev", "svtap0", "nud", "permanent");
        MacAddress hostMac = MacAddress.Parse(LinkAddress().Match(ns.Ip("-o", "link", "show", "svtap0")).Groups[1].Value);
        using Socket socket = ns.Enter(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
            s.Bind(new IPEndPoint(IPAddress.Parse(HostIp), HostPort));
            return s;
        });

        GuestVirtioDevice driver = bench.Driver("net0", VirtioNetDevice.FeatureMac);
        Assert.Equal(guestMac.ToBytes()[..4], BitConverter.GetBytes(driver.ReadConfig32(0)));
        GuestRing receive = driver.SetupQueue(VirtioNetDevice.ReceiveQueue, DeviceBench.Ring(0), 16);
        GuestRing transmit = driver.SetupQueue(VirtioNetDevice.TransmitQueue, DeviceBench.Ring(1), 16);
        for (int i = 0; i < 8; i++)
        {
            receive.AddChain((DeviceBench.Data(16 + i), 2048, true));
        }

        driver.SetDriverOk();

        // Guest to host.
        byte[] outgoing = "guest says hello over virtio-net"u8.ToArray();
        byte[] frame = UdpFrame(guestMac, hostMac, GuestIp, HostIp, GuestPort, HostPort, outgoing);
        bench.Machine.Memory.Fill(DeviceBench.Data(1), NetHeaderSize, 0);
        bench.Machine.Memory.Write(DeviceBench.Data(1) + NetHeaderSize, frame);
        transmit.AddChain((DeviceBench.Data(1), (uint)(NetHeaderSize + frame.Length), false));
        driver.Notify(VirtioNetDevice.TransmitQueue);

        byte[] received = new byte[2048];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        int length = socket.ReceiveFrom(received, ref from);
        Assert.Equal(outgoing, received[..length]);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(GuestIp), GuestPort), from);

        // Host to guest.
        byte[] incoming = "host answers through the TAP"u8.ToArray();
        socket.SendTo(incoming, new IPEndPoint(IPAddress.Parse(GuestIp), GuestPort));
        byte[]? payload = null;
        for (int i = 0; i < 8 && payload is null; i++)
        {
            (uint id, uint used) = receive.WaitUsed() ?? throw new Xunit.Sdk.XunitException("the guest received no frame");
            byte[] buffer = new byte[used];
            bench.Machine.Memory.Read(DeviceBench.Data(16 + (int)id), buffer);
            payload = UdpPayload(buffer.AsSpan(NetHeaderSize), GuestPort);
        }

        Assert.Equal(incoming, payload);
        VirtioIoCounters counters = bench.Devices.Devices.Single(d => d.Name == "net0").Device.IoCounters;
        Assert.True(counters.WriteRequests == 1 && counters.WriteBytes == frame.Length, $"tx {counters.WriteRequests}/{counters.WriteBytes}");
        Assert.True(counters.ReadRequests >= 1);
    }

    /// <summary>An Ethernet II / IPv4 / UDP frame (UDP checksum 0: none, as IPv4 allows).</summary>
    private static byte[] UdpFrame(MacAddress source, MacAddress destination, string sourceIp, string destinationIp, ushort sourcePort, ushort destinationPort, byte[] payload)
    {
        byte[] frame = new byte[14 + 20 + 8 + payload.Length];
        Span<byte> f = frame;
        destination.ToBytes().CopyTo(f);
        source.ToBytes().CopyTo(f[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], 0x0800);
        Span<byte> ip = f.Slice(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + 8 + payload.Length));
        ip[8] = 64;
        ip[9] = 17;
        IPAddress.Parse(sourceIp).GetAddressBytes().CopyTo(ip[12..]);
        IPAddress.Parse(destinationIp).GetAddressBytes().CopyTo(ip[16..]);
        uint sum = 0;
        for (int i = 0; i < 20; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(ip[i..]);
        }

        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~sum);
        Span<byte> udp = f.Slice(34, 8);
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + payload.Length));
        payload.CopyTo(f[42..]);
        return frame;
    }

    /// <summary>The UDP payload of an IPv4 frame to <paramref name="port"/>, or null for any other frame.</summary>
    private static byte[]? UdpPayload(ReadOnlySpan<byte> frame, ushort port)
    {
        if (frame.Length < 42 || BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != 0x0800 || frame[23] != 17)
        {
            return null;
        }

        int ipHeader = (frame[14] & 0xF) * 4;
        ReadOnlySpan<byte> udp = frame[(14 + ipHeader)..];
        if (BinaryPrimitives.ReadUInt16BigEndian(udp[2..]) != port)
        {
            return null;
        }

        return udp[8..BinaryPrimitives.ReadUInt16BigEndian(udp[4..])].ToArray();
    }

    [GeneratedRegex("link/ether ([0-9a-f:]{17})")]
    private static partial Regex LinkAddress();
}
