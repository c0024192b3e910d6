using SharpVisor.Devices.Legacy;

namespace SharpVisor;

/// <summary>
/// <see cref="VirtualMachine.Console"/>: reads return what the guest wrote to its serial console
/// (0 once it has stopped and everything was read); writes are keystrokes into the UART's
/// receiver, waiting while its input queue is full.
/// </summary>
internal sealed class ConsoleStream(ConsoleBuffer output, Serial16550 serial, Func<bool> stopped) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> destination)
    {
        byte[] chunk = new byte[destination.Length];
        int read = output.ReadAsync(chunk, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        chunk.AsSpan(0, read).CopyTo(destination);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        output.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default) =>
        output.ReadAsync(destination, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (stopped())
            {
                throw new IOException("the virtual machine has stopped: its console takes no more input");
            }

            int accepted = serial.EnqueueInput(data);
            data = data[accepted..];
            if (!data.IsEmpty)
            {
                // The guest has not drained the UART's input queue yet.
                Thread.Sleep(1);
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
