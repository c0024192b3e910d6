using SharpVisor.Memory;

namespace SharpVisor.Memory.Tests;

/// <summary>Writes from outside the guest's CPUs reach <see cref="GuestMemory.ExternalWrites"/> after the bytes are in place.</summary>
public sealed class ExternalWriteTests
{
    [Fact]
    public void EveryWritingCallReportsItsRangeAfterTheWrite()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4UL << 20);
        var observer = new Recorder(memory);
        memory.ExternalWrites = observer;

        memory.Write(0x1000, [1, 2, 3]);
        memory.Write<uint>(0x2000, 0xAABBCCDD);
        memory.Fill(0x3000, 16, 0x5A);
        Assert.True(memory.TryDiscard(0x4000, 0x1000));
        memory.NotifyExternalWrite(0x5000, 0);    // nothing written: nothing reported
        memory.NotifyExternalWrite(0x6000, 8);

        Assert.Equal(
            [(0x1000UL, 3UL, (byte)1), (0x2000UL, 4UL, (byte)0xDD), (0x3000UL, 16UL, (byte)0x5A), (0x4000UL, 0x1000UL, (byte)0), (0x6000UL, 8UL, (byte)0)],
            observer.Writes);
    }

    [Fact]
    public void ReadsAndRefusedWritesReportNothing()
    {
        using GuestMemory memory = GuestMemory.CreateRam(4UL << 20);
        var observer = new Recorder(memory);
        memory.ExternalWrites = observer;

        _ = memory.Read<ulong>(0x1000);
        Assert.Throws<GuestMemoryException>(() => memory.Write(memory.RamSize - 1, [1, 2]));
        Assert.False(memory.TryDiscard(0x1001, 0x1000));

        Assert.Empty(observer.Writes);
    }

    /// <summary>Records each report with the first byte it sees there, so a report made before the write would show the old byte.</summary>
    private sealed class Recorder(GuestMemory memory) : IExternalWriteObserver
    {
        public List<(ulong Address, ulong Length, byte First)> Writes { get; } = new();

        public void OnExternalWrite(ulong address, ulong length) => Writes.Add((address, length, memory.GetSpan(address, 1)[0]));
    }
}
