using System.Threading.Channels;

namespace SharpVisor.Host.Console;

/// <summary>One attached console reader: the history at the moment it attached, then live output.</summary>
public sealed class ConsoleSubscription : IDisposable
{
    private readonly Action<ConsoleSubscription> _unsubscribe;

    internal ConsoleSubscription(byte[] history, Channel<byte[]> channel, Action<ConsoleSubscription> unsubscribe)
    {
        History = history;
        Channel = channel;
        _unsubscribe = unsubscribe;
    }

    public byte[] History { get; }

    /// <summary>Live output; completes when the console ends (the domain stopped).</summary>
    public ChannelReader<byte[]> Live => Channel.Reader;

    internal Channel<byte[]> Channel { get; }

    public void Dispose() => _unsubscribe(this);
}
