namespace SharpVisor.Emulator.Platform;

/// <summary>
/// Where the platform devices report guest misbehaviour (bad register values, out-of-range
/// addresses). A hostile guest can trigger these at will, so only the first
/// <see cref="MaxForwarded"/> reach the sink; all are counted.
/// </summary>
public sealed class PlatformLog
{
    public const int MaxForwarded = 200;

    private readonly Action<string>? _sink;
    private int _count;
    private volatile string? _lastMessage;

    public PlatformLog(Action<string>? sink = null)
    {
        _sink = sink;
    }

    /// <summary>A log that only counts (and remembers the last message).</summary>
    public static PlatformLog Null => new();

    public int Count => Volatile.Read(ref _count);

    public string? LastMessage => _lastMessage;

    public void Warn(string source, string message)
    {
        string line = $"{source}: {message}";
        _lastMessage = line;
        int n = Interlocked.Increment(ref _count);
        if (n <= MaxForwarded)
        {
            _sink?.Invoke(line);
        }
        else if (n == MaxForwarded + 1)
        {
            _sink?.Invoke("platform: further warnings suppressed");
        }
    }
}
