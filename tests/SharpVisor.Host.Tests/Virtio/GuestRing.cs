using SharpVisor.Memory;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>The driver's half of a split virtqueue in guest memory, laid out as Linux's virtio_ring does.</summary>
public sealed class GuestRing
{
    public const ushort FlagNext = 1;
    public const ushort FlagWrite = 2;

    private readonly GuestMemory _memory;
    private ushort _availIndex;
    private ushort _nextDescriptor;
    private ushort _lastUsed;

    public GuestRing(GuestMemory memory, ulong baseAddress, ushort size)
    {
        _memory = memory;
        Size = size;
        DescriptorTable = baseAddress;
        DriverArea = baseAddress + (16UL * size);
        DeviceArea = (DriverArea + 6 + (2UL * size) + 3) & ~3UL;
        memory.Fill(baseAddress, (int)(DeviceArea + 6 + (8UL * size) - baseAddress), 0);
    }

    public ushort Size { get; }

    public ulong DescriptorTable { get; }

    public ulong DriverArea { get; }

    public ulong DeviceArea { get; }

    public ushort UsedIndex => _memory.Read<ushort>(DeviceArea + 2);

    /// <summary>Writes a chain into consecutive descriptors; published at once unless <paramref name="publish"/> is false.</summary>
    public ushort AddChain(bool publish, params (ulong Address, uint Length, bool Writable)[] buffers)
    {
        ushort head = _nextDescriptor;
        for (int i = 0; i < buffers.Length; i++)
        {
            int index = (head + i) % Size;
            bool last = i == buffers.Length - 1;
            ulong at = DescriptorTable + (16UL * (ulong)index);
            _memory.Write(at, buffers[i].Address);
            _memory.Write(at + 8, buffers[i].Length);
            _memory.Write(at + 12, (ushort)((last ? 0 : FlagNext) | (buffers[i].Writable ? FlagWrite : 0)));
            _memory.Write(at + 14, (ushort)((index + 1) % Size));
        }

        _nextDescriptor = (ushort)((head + buffers.Length) % Size);
        if (publish)
        {
            Publish(head);
        }

        return head;
    }

    public ushort AddChain(params (ulong Address, uint Length, bool Writable)[] buffers) => AddChain(true, buffers);

    /// <summary>Puts <paramref name="head"/> in the available ring and bumps avail->idx.</summary>
    public void Publish(ushort head)
    {
        _memory.Write(DriverArea + 4 + (2UL * (ulong)(_availIndex % Size)), head);
        _availIndex++;
        Interlocked.MemoryBarrier();
        _memory.Write(DriverArea + 2, _availIndex);
    }

    /// <summary>Waits for the next used element; null when the device did not answer in time.</summary>
    public (uint Id, uint Length)? WaitUsed(int timeoutMs = 5000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (UsedIndex == _lastUsed)
        {
            if (DateTime.UtcNow > deadline)
            {
                return null;
            }

            Thread.Sleep(1);
        }

        ulong element = DeviceArea + 4 + (8UL * (ulong)(_lastUsed % Size));
        _lastUsed++;
        return (_memory.Read<uint>(element), _memory.Read<uint>(element + 4));
    }
}
