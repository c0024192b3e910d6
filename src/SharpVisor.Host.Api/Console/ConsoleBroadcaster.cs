using System.Threading.Channels;
using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Console;

/// <summary>
/// A serial console shared by many readers: output is kept in a ring (for late attachers)
/// and fanned out to every subscriber; input from any subscriber goes to <see cref="Input"/>.
/// A slow reader loses its oldest chunks rather than slowing the guest down.
/// </summary>
public sealed class ConsoleBroadcaster
{
    public const int DefaultRingBytes = 256 * 1024;
    private const int SubscriberQueueChunks = 4096;

    private readonly object _lock = new();
    private readonly ConsoleRing _ring;
    private readonly List<ConsoleSubscription> _subscribers = new();
    private long _outputBytes;
    private long _outputWrites;
    private long _inputBytes;
    private long _inputWrites;
    private bool _completed;

    public ConsoleBroadcaster(string deviceName = "serial0", int ringBytes = DefaultRingBytes)
    {
        DeviceName = deviceName;
        _ring = new ConsoleRing(ringBytes);
        OutputSink = new ConsoleOutputStream(this);
    }

    public string DeviceName { get; }

    /// <summary>A write-only stream for the UART: what the guest writes appears on the console.</summary>
    public Stream OutputSink { get; }

    /// <summary>Where typed bytes go; null drops them (no machine yet).</summary>
    public ConsoleInputHandler? Input { get; set; }

    public bool IsCompleted
    {
        get
        {
            lock (_lock)
            {
                return _completed;
            }
        }
    }

    public void Publish(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        byte[] chunk = data.ToArray();
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            _ring.Append(chunk);
            _outputBytes += chunk.Length;
            _outputWrites++;
            foreach (ConsoleSubscription subscriber in _subscribers)
            {
                subscriber.Channel.Writer.TryWrite(chunk);
            }
        }
    }

    public void WriteInput(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        Interlocked.Add(ref _inputBytes, data.Length);
        Interlocked.Increment(ref _inputWrites);
        Input?.Invoke(data);
    }

    public ConsoleSubscription Subscribe()
    {
        Channel<byte[]> channel = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(SubscriberQueueChunks)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
            SingleWriter = false,
        });
        lock (_lock)
        {
            var subscription = new ConsoleSubscription(_ring.ToArray(), channel, Unsubscribe);
            if (_completed)
            {
                channel.Writer.TryComplete();
            }
            else
            {
                _subscribers.Add(subscription);
            }

            return subscription;
        }
    }

    public byte[] History()
    {
        lock (_lock)
        {
            return _ring.ToArray();
        }
    }

    /// <summary>Ends every subscription (the machine stopped); history stays readable.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _completed = true;
            foreach (ConsoleSubscription subscriber in _subscribers)
            {
                subscriber.Channel.Writer.TryComplete();
            }

            _subscribers.Clear();
        }
    }

    /// <summary>Reopens a completed console for a new incarnation of the machine (reboot).</summary>
    public void Reopen()
    {
        lock (_lock)
        {
            _completed = false;
        }
    }

    /// <summary>The console as a device: reads are bytes typed into the guest, writes are what it printed.</summary>
    public DeviceCounters Counters()
    {
        lock (_lock)
        {
            return new DeviceCounters(DeviceName, Interlocked.Read(ref _inputWrites), Interlocked.Read(ref _inputBytes), _outputWrites, _outputBytes);
        }
    }

    private void Unsubscribe(ConsoleSubscription subscription)
    {
        lock (_lock)
        {
            _subscribers.Remove(subscription);
        }

        subscription.Channel.Writer.TryComplete();
    }
}
