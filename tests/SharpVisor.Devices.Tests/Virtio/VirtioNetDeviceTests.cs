using System.Buffers.Binary;
using System.Diagnostics;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>virtio-net against a real TAP interface created (and removed) by each test.</summary>
public sealed class VirtioNetDeviceTests
{
    private const ushort TestEtherType = 0x88B5; // IEEE local experimental
    private static readonly byte[] s_guestMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    private static int s_counter;

    private static string NewTapName() => $"svt{Environment.ProcessId % 10000}x{Interlocked.Increment(ref s_counter)}";

    private static TapDevice OpenUpTap()
    {
        TapDevice tap = TapDevice.Open(NewTapName());
        string ipv6 = $"/proc/sys/net/ipv6/conf/{tap.Name}/disable_ipv6";
        if (File.Exists(ipv6))
        {
            File.WriteAllText(ipv6, "1"); // keep the kernel from sending its own frames into the test
        }

        RunIp("link", "set", "dev", tap.Name, "up");
        return tap;
    }

    private static void RunIp(params string[] arguments)
    {
        using Process ip = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true })!;
        ip.WaitForExit();
        Assert.True(ip.ExitCode == 0, $"ip {string.Join(' ', arguments)}: {ip.StandardError.ReadToEnd()}");
    }

    private static byte[] Frame(ReadOnlySpan<byte> destination, ReadOnlySpan<byte> source, string payload)
    {
        byte[] frame = new byte[14 + Math.Max(46, payload.Length)];
        destination.CopyTo(frame);
        source.CopyTo(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), TestEtherType);
        System.Text.Encoding.ASCII.GetBytes(payload, frame.AsSpan(14));
        return frame;
    }

    private static bool Carries(byte[] frame, string payload) =>
        frame.Length >= 14 + payload.Length && BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) == TestEtherType &&
        frame.AsSpan(14, payload.Length).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(payload));

    [TapFact]
    public void TapInterfaceExistsWhileOpenAndIsRemovedOnDispose()
    {
        string name;
        using (TapDevice tap = TapDevice.Open(NewTapName()))
        {
            name = tap.Name;
            Assert.True(Directory.Exists($"/sys/class/net/{name}"));
            Assert.Equal("0x5002", File.ReadAllText($"/sys/class/net/{name}/tun_flags").Trim()); // TAP | NO_PI | VNET_HDR
        }

        Assert.False(Directory.Exists($"/sys/class/net/{name}"));
    }

    [TapFact]
    public void AttachesToAnExistingPersistentTap()
    {
        string name = NewTapName();
        RunIp("tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr");
        try
        {
            using (TapDevice tap = TapDevice.Open(name))
            {
                Assert.Equal(name, tap.Name);
                tap.SetVnetHeaderSize(VirtioNetDevice.HeaderSize);
            }

            // Closing our descriptor leaves a persistent interface in place.
            Assert.True(Directory.Exists($"/sys/class/net/{name}"));
        }
        finally
        {
            RunIp("tuntap", "del", "dev", name, "mode", "tap");
        }

        Assert.False(Directory.Exists($"/sys/class/net/{name}"));
    }

    [TapFact]
    public void OffersMacStatusAndOnlyTheOffloadsTheTapAccepts()
    {
        using TapDevice tap = OpenUpTap();
        bool accepted = tap.TrySetOffload(TapDevice.TunFlagChecksum | TapDevice.TunFlagTso4 | TapDevice.TunFlagTso6 | TapDevice.TunFlagTsoEcn);
        using var rig = new DeviceRig(p => new VirtioNetDevice(p.Memory, tap, s_guestMac));
        Assert.Equal(0x1041, rig.Platform.ConfigRead16(rig.Driver.Slot, 2));
        ulong offered = rig.Device.DeviceFeatures;
        Assert.NotEqual(0UL, offered & VirtioNetDevice.FeatureMac);
        Assert.NotEqual(0UL, offered & VirtioNetDevice.FeatureStatus);
        Assert.Equal(accepted ? VirtioNetDevice.OffloadFeatures : 0, offered & VirtioNetDevice.OffloadFeatures);

        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            mac[i] = rig.Driver.Read8(rig.Driver.DeviceConfig + (ulong)i);
        }

        Assert.Equal(s_guestMac, mac);
        Assert.Equal(VirtioNetDevice.StatusLinkUp, rig.Driver.Read16(rig.Driver.DeviceConfig + 6));
        ((VirtioNetDevice)rig.Device).SetLinkUp(false);
        Assert.Equal(0, rig.Driver.Read16(rig.Driver.DeviceConfig + 6));
    }

    [TapFact]
    public void SegmentationOffloadWithoutChecksumOffloadIsRefused()
    {
        using TapDevice tap = OpenUpTap();
        using var rig = new DeviceRig(p => new VirtioNetDevice(p.Memory, tap, s_guestMac));
        if ((rig.Device.DeviceFeatures & VirtioNetDevice.FeatureGuestTso4) == 0)
        {
            return; // this kernel's TAP offers no offloads to combine
        }

        Assert.False(rig.Driver.Negotiate(VirtioFeatures.Version1 | VirtioNetDevice.FeatureGuestTso4));
        Assert.True(rig.Driver.Negotiate(VirtioFeatures.Version1 | VirtioNetDevice.FeatureGuestTso4 | VirtioNetDevice.FeatureGuestCsum));
    }

    [TapFact]
    public void GuestTransmitsAFrameIntoTheTap()
    {
        using TapDevice tap = OpenUpTap();
        using var socket = new PacketSocket(tap.Name);
        using var rig = new DeviceRig(p => new VirtioNetDevice(p.Memory, tap, s_guestMac));
        rig.Device.StartWorker();

        byte[] frame = Frame([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], s_guestMac, "sharpvisor guest tx");
        ulong header = DeviceRig.Data(0);
        ulong body = DeviceRig.Data(1);
        rig.Platform.Memory.Fill(header, VirtioNetDevice.HeaderSize, 0);
        rig.Platform.Memory.Write(body, frame);
        DriverRing tx = rig.Rings[VirtioNetDevice.TransmitQueue];
        ushort head = tx.AddChain((header, VirtioNetDevice.HeaderSize, false), (body, (uint)frame.Length, false));
        rig.Driver.Notify(VirtioNetDevice.TransmitQueue);

        byte[]? seen = socket.Receive(f => Carries(f, "sharpvisor guest tx"), TimeSpan.FromSeconds(10));
        Assert.NotNull(seen);
        Assert.Equal(frame, seen);
        Assert.True(SpinWait.SpinUntil(() => tx.UsedIndex == 1, TimeSpan.FromSeconds(5)));
        Assert.Equal(head, (ushort)tx.Used(0).Id);
        Assert.Equal(1, ((VirtioNetDevice)rig.Device).TxFrames);
    }

    [TapFact]
    public void FramesFromTheTapReachGuestReceiveBuffers()
    {
        using TapDevice tap = OpenUpTap();
        using var socket = new PacketSocket(tap.Name);
        using var rig = new DeviceRig(p => new VirtioNetDevice(p.Memory, tap, s_guestMac));
        rig.Device.StartWorker();
        DriverRing rx = rig.Rings[VirtioNetDevice.ReceiveQueue];

        // The frame arrives before any buffer is posted: the device holds it until one is.
        byte[] frame = Frame(s_guestMac, [0x02, 0, 0, 0, 0, 0x99], "hello guest");
        socket.Send(frame);
        Thread.Sleep(200);
        Assert.Equal(0, rx.UsedIndex);

        ulong buffer = DeviceRig.Data(0);
        ushort head = rx.AddChain((buffer, 2048, true));
        rig.Driver.Notify(VirtioNetDevice.ReceiveQueue);
        Assert.True(SpinWait.SpinUntil(() => rx.UsedIndex >= 1, TimeSpan.FromSeconds(10)), "no frame reached the guest");
        (uint id, uint length) = rx.Used(0);
        Assert.Equal(head, (ushort)id);
        Assert.Equal((uint)(VirtioNetDevice.HeaderSize + frame.Length), length);
        Assert.Equal(1, rig.Platform.Memory.Read<ushort>(buffer + 10)); // num_buffers
        Assert.Equal(frame, rig.Platform.Memory.GetSpan(buffer + VirtioNetDevice.HeaderSize, frame.Length).ToArray());
    }

    [TapFact]
    public void MergeableReceiveSpreadsABigFrameOverSeveralBuffers()
    {
        using TapDevice tap = OpenUpTap();
        using var socket = new PacketSocket(tap.Name);
        using var rig = new DeviceRig(p => new VirtioNetDevice(p.Memory, tap, s_guestMac));
        Assert.NotEqual(0UL, rig.Device.DriverFeatures & VirtioNetDevice.FeatureMergeableRxBuffers);
        rig.Device.StartWorker();
        DriverRing rx = rig.Rings[VirtioNetDevice.ReceiveQueue];
        for (int i = 0; i < 8; i++)
        {
            rx.AddChain((DeviceRig.Data(i), 64, true));
        }

        rig.Driver.Notify(VirtioNetDevice.ReceiveQueue);
        string payload = new('z', 186);
        byte[] frame = Frame(s_guestMac, [0x02, 0, 0, 0, 0, 0x99], payload); // 200 bytes + 12 = 4 buffers
        socket.Send(frame);
        Assert.True(SpinWait.SpinUntil(() => rx.UsedIndex >= 4, TimeSpan.FromSeconds(10)), "the frame did not arrive");
        Assert.Equal(4, rig.Platform.Memory.Read<ushort>(DeviceRig.Data(0) + 10));
        byte[] received = new byte[4 * 64];
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(i == 3 ? 212u - 192 : 64u, rx.Used(i).Length);
            rig.Platform.Memory.GetSpan(DeviceRig.Data(i), 64).CopyTo(received.AsSpan(64 * i));
        }

        Assert.Equal(frame, received[VirtioNetDevice.HeaderSize..(VirtioNetDevice.HeaderSize + frame.Length)]);
    }
}
