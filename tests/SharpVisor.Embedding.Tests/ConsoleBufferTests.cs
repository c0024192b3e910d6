namespace SharpVisor.Embedding.Tests;

/// <summary>The console's buffer never holds back the guest: past its capacity the oldest output goes, and says how much.</summary>
public sealed class ConsoleBufferTests
{
    [Fact]
    public async Task AReaderBehindLosesTheOldestBytesAndSeesTheEndAfterComplete()
    {
        var buffer = new ConsoleBuffer(8);
        buffer.Append("abcdef"u8);
        buffer.Append("ghijk"u8);
        buffer.Complete();

        byte[] read = new byte[16];
        int count = await buffer.ReadAsync(read, CancellationToken.None);

        Assert.Equal("defghijk", System.Text.Encoding.ASCII.GetString(read, 0, count));
        Assert.Equal(3, buffer.DroppedBytes);
        Assert.Equal(0, await buffer.ReadAsync(read, CancellationToken.None));
    }

    [Fact]
    public async Task AWaitingReaderWakesOnOutputAndAHugeWriteKeepsItsTail()
    {
        var buffer = new ConsoleBuffer(4);
        byte[] read = new byte[16];
        ValueTask<int> pending = buffer.ReadAsync(read, CancellationToken.None);
        Assert.False(pending.IsCompleted);

        buffer.Append("0123456789"u8);

        int count = await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("6789", System.Text.Encoding.ASCII.GetString(read, 0, count));
        Assert.Equal(6, buffer.DroppedBytes);
    }
}
