using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Win32.SafeHandles;
using SharpVisor.Interop;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// What the Firecracker front end passes to the JIT VMM across exec, as JSON in a memfd whose
/// descriptor is <c>--handover-fd N</c>: the command line, the descriptors it keeps open (API and
/// console listeners, the connection of the pending request), the bytes read on that connection
/// (the pending request, re-encoded, and anything pipelined after it), the configuration requests
/// accepted so far, and the metrics not flushed yet.
/// </summary>
public sealed record VmmHandoverState
{
    /// <summary>The hidden option of <c>sharpvisor firecracker</c> that takes a handover.</summary>
    public const string DescriptorOption = "--handover-fd";

    /// <summary>A handover is small (bodies are at most 100 KiB each); more is not a handover.</summary>
    public const int MaxBytes = 16 << 20;

    [JsonPropertyName("arguments")]
    public required List<string> Arguments { get; init; }

    [JsonPropertyName("api_socket_fd")]
    public required int ApiSocketFd { get; init; }

    [JsonPropertyName("console_socket_fd")]
    public required int ConsoleSocketFd { get; init; }

    [JsonPropertyName("connection_fd")]
    public required int ConnectionFd { get; init; }

    [JsonPropertyName("buffered")]
    public byte[] Buffered { get; init; } = [];

    [JsonPropertyName("requests")]
    public List<VmmHandoverRequest> Requests { get; init; } = [];

    [JsonPropertyName("startup_time_us")]
    public long StartupMicroseconds { get; init; }

    [JsonPropertyName("startup_time_cpu_us")]
    public long StartupCpuMicroseconds { get; init; }

    [JsonPropertyName("request_counts")]
    public Dictionary<string, long> RequestCounts { get; init; } = [];

    /// <summary>Writes the state into a new memfd that survives exec; returns its descriptor.</summary>
    public int WriteToMemfd()
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(this, VmmHandoverJsonContext.Default.VmmHandoverState);
        int fd = LibC.MemfdCreate("sharpvisor-handover", 0);
        if (fd < 0)
        {
            throw LinuxException.FromLastError("memfd_create");
        }

        using var handle = new SafeFileHandle(fd, ownsHandle: false);
        try
        {
            RandomAccess.Write(handle, json, 0);
        }
        catch
        {
            LibC.Close(fd);
            throw;
        }

        return fd;
    }

    /// <summary>Reads and closes the memfd named by <paramref name="descriptor"/> (the text after --handover-fd).</summary>
    public static VmmHandoverState Read(string descriptor)
    {
        if (!int.TryParse(descriptor, NumberStyles.None, CultureInfo.InvariantCulture, out int fd) || fd < 3)
        {
            throw new FormatException($"{DescriptorOption} '{descriptor}' is not a descriptor number");
        }

        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        long length = RandomAccess.GetLength(handle);
        if (length > MaxBytes)
        {
            throw new IOException($"the handover is {length} bytes, more than {MaxBytes}");
        }

        byte[] json = new byte[length];
        int read = 0;
        while (read < json.Length)
        {
            int n = RandomAccess.Read(handle, json.AsSpan(read), read);
            if (n == 0)
            {
                throw new IOException("the handover ended early");
            }

            read += n;
        }

        return JsonSerializer.Deserialize(json, VmmHandoverJsonContext.Default.VmmHandoverState)
            ?? throw new FormatException("the handover is empty");
    }
}
