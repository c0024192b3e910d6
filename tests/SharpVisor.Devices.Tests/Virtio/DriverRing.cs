using SharpVisor.Devices.Virtio;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>The driver's side of a split virtqueue, written the way Linux's virtio_ring does it.</summary>
public sealed class DriverRing
{
    private readonly GuestMemory _memory;
    private ushort _availIndex;
    private ushort _nextDescriptor;

    public DriverRing(GuestMemory memory, ulong baseAddress, ushort size)
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

    public ushort AvailIndex => _availIndex;

    public ushort UsedIndex => _memory.Read<ushort>(DeviceArea + 2);

    public ushort UsedFlags => _memory.Read<ushort>(DeviceArea);

    public ushort AvailEvent => _memory.Read<ushort>(DeviceArea + 4 + (8UL * Size));

    public (uint Id, uint Length) Used(int index) =>
        (_memory.Read<uint>(DeviceArea + 4 + (8UL * (ulong)(index % Size))), _memory.Read<uint>(DeviceArea + 8 + (8UL * (ulong)(index % Size))));

    public void SetDescriptor(int index, ulong address, uint length, ushort flags, ushort next) =>
        WriteDescriptor(DescriptorTable + (16UL * (ulong)index), address, length, flags, next);

    public static void WriteDescriptor(GuestMemory memory, ulong at, ulong address, uint length, ushort flags, ushort next)
    {
        memory.Write(at, address);
        memory.Write(at + 8, length);
        memory.Write(at + 12, flags);
        memory.Write(at + 14, next);
    }

    /// <summary>Writes a chain into consecutive free descriptors and makes it available.</summary>
    public ushort AddChain(params (ulong Address, uint Length, bool Writable)[] buffers)
    {
        ushort head = _nextDescriptor;
        for (int i = 0; i < buffers.Length; i++)
        {
            int index = (head + i) % Size;
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((last ? 0 : DescriptorChain.FlagNext) | (buffers[i].Writable ? DescriptorChain.FlagWrite : 0));
            SetDescriptor(index, buffers[i].Address, buffers[i].Length, flags, (ushort)((index + 1) % Size));
        }

        _nextDescriptor = (ushort)((head + buffers.Length) % Size);
        Publish(head);
        return head;
    }

    /// <summary>Puts the buffers in an indirect table at <paramref name="table"/> and makes one descriptor point at it.</summary>
    public ushort AddIndirect(ulong table, params (ulong Address, uint Length, bool Writable)[] buffers)
    {
        for (int i = 0; i < buffers.Length; i++)
        {
            bool last = i == buffers.Length - 1;
            ushort flags = (ushort)((last ? 0 : DescriptorChain.FlagNext) | (buffers[i].Writable ? DescriptorChain.FlagWrite : 0));
            WriteDescriptor(_memory, table + (16UL * (ulong)i), buffers[i].Address, buffers[i].Length, flags, (ushort)(i + 1));
        }

        ushort head = _nextDescriptor;
        SetDescriptor(head, table, (uint)(16 * buffers.Length), DescriptorChain.FlagIndirect, 0);
        _nextDescriptor = (ushort)((head + 1) % Size);
        Publish(head);
        return head;
    }

    public void Publish(ushort head)
    {
        _memory.Write(DriverArea + 4 + (2UL * (ulong)(_availIndex % Size)), head);
        _availIndex++;
        _memory.Write(DriverArea + 2, _availIndex);
    }

    public void SetAvailIndex(ushort index)
    {
        _availIndex = index;
        _memory.Write(DriverArea + 2, index);
    }

    public void SetAvailFlags(ushort flags) => _memory.Write(DriverArea, flags);

    public void SetUsedEvent(ushort value) => _memory.Write(DriverArea + 4 + (2UL * Size), value);

    private void WriteDescriptor(ulong at, ulong address, uint length, ushort flags, ushort next) =>
        WriteDescriptor(_memory, at, address, length, flags, next);
}
