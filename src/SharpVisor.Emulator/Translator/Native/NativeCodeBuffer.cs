using System.Runtime.InteropServices;

namespace SharpVisor.Emulator.Translator.Native;

/// <summary>
/// One vCPU's native code: an anonymous read-write-execute mapping filled by bump allocation.
/// When it is full it starts over (<see cref="Generation"/> advances; code of an older
/// generation is never run again: <see cref="NativeBlock"/> checks it before every call). The
/// vCPU's own thread is the only one that writes or runs it, and native code never runs while
/// managed code of that thread does, so starting over cannot pull code from under a running frame.
/// The mapping is returned to the system when the CPU is collected.
/// </summary>
internal sealed unsafe partial class NativeCodeBuffer
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int ProtExec = 4;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MapNoReserve = 0x4000;

    private readonly byte* _base;
    private readonly long _capacity;
    private long _used;

    private NativeCodeBuffer(byte* start, long capacity)
    {
        _base = start;
        _capacity = capacity;
    }

    ~NativeCodeBuffer()
    {
        Munmap((nint)_base, (nuint)_capacity);
    }

    /// <summary>Advanced each time the buffer starts over: code of an older generation is gone.</summary>
    public int Generation { get; private set; }

    public long Capacity => _capacity;

    /// <summary>Maps a buffer of <paramref name="capacity"/> bytes, or returns null if the system refuses (no executable anonymous memory).</summary>
    public static NativeCodeBuffer? TryCreate(long capacity)
    {
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return null;
        }

        nint p = Mmap(0, (nuint)capacity, ProtRead | ProtWrite | ProtExec, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        return p == -1 || p == 0 ? null : new NativeCodeBuffer((byte*)p, capacity);
    }

    /// <summary>Copies <paramref name="code"/> into the buffer and returns its address, or null when it does not fit (the caller starts the buffer over with <see cref="Reset"/>).</summary>
    public byte* TryAdd(ReadOnlySpan<byte> code)
    {
        long start = (_used + 15) & ~15L;
        if (start + code.Length > _capacity)
        {
            return null;
        }

        byte* p = _base + start;
        code.CopyTo(new Span<byte>(p, code.Length));
        _used = start + code.Length;
        return p;
    }

    /// <summary>Drops all code: every block compiled before finds its generation stale.</summary>
    public void Reset()
    {
        _used = 0;
        Generation++;
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(nint address, nuint length);
}
