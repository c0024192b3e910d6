namespace SharpVisor.Xen.Tests;

/// <summary>netback's port for tests: frames sent are kept; nothing arrives by itself (tests call Deliver).</summary>
internal sealed class FakePacketPort : IXenPacketPort
{
    public List<byte[]> Sent { get; } = [];

    public bool Send(ReadOnlySpan<byte> frame)
    {
        Sent.Add(frame.ToArray());
        return true;
    }

    public int Receive(Span<byte> frame) => 0;

    public bool WaitReadable(int timeoutMilliseconds)
    {
        Thread.Sleep(Math.Min(timeoutMilliseconds, 10));
        return false;
    }
}
