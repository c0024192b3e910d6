using SharpVisor.Devices.Terminal;

namespace SharpVisor.Devices.Tests.Terminal;

public sealed class OutputPumpTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void BytesArriveInOrderAndExactly()
    {
        var target = new RecordingStream();
        byte[] sent = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 31)).ToArray();
        using (var pump = new OutputPump(target, bufferSize: 4096))
        {
            foreach (byte b in sent)
            {
                pump.WriteByte(b);
            }

            Assert.True(pump.Drain(s_timeout));
            Assert.Equal(sent, target.Contents);
        }
    }

    [Fact]
    public void AByteIsWrittenWithoutWaitingForMore()
    {
        var target = new RecordingStream();
        using var pump = new OutputPump(target);

        pump.WriteByte((byte)'$');
        pump.Flush();

        var deadline = DateTime.UtcNow + s_timeout;
        while (target.Contents.Length == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }

        Assert.Equal("$"u8.ToArray(), target.Contents);
    }

    [Fact]
    public void BytesQueuedDuringAWriteGoOutAsOneBatch()
    {
        var target = new RecordingStream();
        target.Gate.Reset();
        using var pump = new OutputPump(target);

        pump.WriteByte(0); // the writer takes it and blocks in the target
        Assert.True(target.Entered.Wait(s_timeout));
        for (int i = 1; i <= 1000; i++)
        {
            pump.WriteByte((byte)i);
        }

        target.Gate.Set();
        Assert.True(pump.Drain(s_timeout));
        Assert.Equal([1, 1000], target.WriteSizes);
        Assert.Equal(1001, target.Contents.Length);
    }

    [Fact]
    public void AFullBufferMakesWritersWaitInsteadOfDropping()
    {
        var target = new RecordingStream();
        target.Gate.Reset();
        using var pump = new OutputPump(target, bufferSize: 4);
        pump.WriteByte(0);
        Assert.True(target.Entered.Wait(s_timeout));

        using var written = new ManualResetEventSlim();
        var writer = new Thread(() =>
        {
            pump.Write(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 });
            written.Set();
        });
        writer.Start();
        Assert.False(written.Wait(TimeSpan.FromMilliseconds(100)), "the writer should wait for room");

        target.Gate.Set();
        Assert.True(written.Wait(s_timeout));
        Assert.True(pump.Drain(s_timeout));
        Assert.Equal(new byte[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, target.Contents);
    }

    [Fact]
    public void AFailedTargetIsReportedAndLaterWritesReturnAtOnce()
    {
        var target = new RecordingStream { Failure = new IOException("No space left on device") };
        using var pump = new OutputPump(target, bufferSize: 2);
        pump.WriteByte(1);

        var deadline = DateTime.UtcNow + s_timeout;
        while (pump.Error is null && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }

        Assert.Equal("No space left on device", pump.Error);
        pump.Write(new byte[100]); // would block forever on a 2-byte buffer if it waited
        Assert.True(pump.Drain(s_timeout));
    }

    [Fact]
    public void DisposeWritesOutTheRestAndClosesAnOwnedTarget()
    {
        var target = new RecordingStream();
        target.Gate.Reset();
        var pump = new OutputPump(target, ownsTarget: true);
        pump.Write("panic: "u8);
        Assert.True(target.Entered.Wait(s_timeout));
        pump.Write("attempted to kill init!"u8);

        target.Gate.Set();
        pump.Dispose();

        Assert.Equal("panic: attempted to kill init!"u8.ToArray(), target.Contents);
        Assert.True(target.Disposed);
    }

    /// <summary>A target that records its writes and can hold the writer inside one.</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly object _lock = new();
        private readonly MemoryStream _contents = new();
        private readonly List<int> _writeSizes = new();

        public ManualResetEventSlim Gate { get; } = new(true);

        public ManualResetEventSlim Entered { get; } = new(false);

        public Exception? Failure { get; init; }

        public bool Disposed { get; private set; }

        public byte[] Contents
        {
            get
            {
                lock (_lock)
                {
                    return _contents.ToArray();
                }
            }
        }

        public int[] WriteSizes
        {
            get
            {
                lock (_lock)
                {
                    return _writeSizes.ToArray();
                }
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Entered.Set();
            Gate.Wait();
            if (Failure is not null)
            {
                throw Failure;
            }

            lock (_lock)
            {
                _contents.Write(buffer, offset, count);
                _writeSizes.Add(count);
            }
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
