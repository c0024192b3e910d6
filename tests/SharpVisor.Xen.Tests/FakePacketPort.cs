namespace SharpVisor.Xen.Tests;

/// <summary>netback's port for tests: the first frames sent are kept, the rest only counted; nothing arrives by itself (tests call Deliver).</summary>
internal sealed class FakePacketPort : IXenPacketPort
{
    private const int Kept = 64;

    public List<byte[]> Sent { get; } = [];

    public long SentCount { get; private set; }

    public int ShortestSent { get; private set; } = int.MaxValue;

    public int LongestSent { get; private set; }

    public bool Send(ReadOnlySpan<byte> frame)
    {
        SentCount++;
        ShortestSent = Math.Min(ShortestSent, frame.Length);
        LongestSent = Math.Max(LongestSent, frame.Length);
        if (Sent.Count < Kept)
        {
            Sent.Add(frame.ToArray());
        }

        return true;
    }

    /// <summary>The offloads of the large packets sent, in order (their bytes are in <see cref="Sent"/> too).</summary>
    public List<XenSegmentationOffload> Offloads { get; } = [];

    public bool Send(ReadOnlySpan<byte> packet, XenSegmentationOffload offload)
    {
        Offloads.Add(offload);
        return Send(packet);
    }

    public int Receive(Span<byte> frame) => 0;

    /// <summary>What netback last asked for on receive.</summary>
    public XenReceiveOffloads ReceiveOffloads { get; private set; }

    public bool SetReceiveOffloads(XenReceiveOffloads offloads)
    {
        ReceiveOffloads = offloads;
        return true;
    }

    public bool WaitReadable(int timeoutMilliseconds)
    {
        Thread.Sleep(Math.Min(timeoutMilliseconds, 10));
        return false;
    }
}
