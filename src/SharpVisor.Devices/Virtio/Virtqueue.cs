using SharpVisor.Machine.Snapshots;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// A split virtqueue (virtio 1.x §2.7): the descriptor table, the driver area (available
/// ring) and the device area (used ring) in guest memory. The driver configures it through
/// the transport; the device pops validated <see cref="DescriptorChain"/>s and pushes used
/// elements. Ring indexes are free-running 16-bit counters.
/// </summary>
public sealed class Virtqueue
{
    public const ushort AvailFlagNoInterrupt = 1;
    public const ushort UsedFlagNoNotify = 1;
    public const ushort NoVector = 0xFFFF;
    public const ushort MaxQueueSize = 32768;

    private readonly GuestMemory _memory;
    private ushort _signalledUsed;
    private ushort _size;
    private ulong _descriptorTable;
    private ulong _driverArea;
    private ulong _deviceArea;

    public Virtqueue(GuestMemory memory, int index, ushort maxSize)
    {
        if (maxSize == 0 || maxSize > MaxQueueSize || (maxSize & (maxSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), "queue size must be a power of two up to 32768");
        }

        _memory = memory;
        Index = index;
        MaxSize = maxSize;
        Reset();
    }

    public int Index { get; }

    public ushort MaxSize { get; }

    /// <summary>The size the driver chose (defaults to <see cref="MaxSize"/>); fixed while the queue is enabled.</summary>
    public ushort Size
    {
        get => _size;
        set => _size = Configurable(value);
    }

    /// <summary>Fixed while the queue is enabled, like every ring address.</summary>
    public ulong DescriptorTableAddress
    {
        get => _descriptorTable;
        set => _descriptorTable = Configurable(value);
    }

    /// <summary>The available ring ("driver area").</summary>
    public ulong DriverAreaAddress
    {
        get => _driverArea;
        set => _driverArea = Configurable(value);
    }

    /// <summary>The used ring ("device area").</summary>
    public ulong DeviceAreaAddress
    {
        get => _deviceArea;
        set => _deviceArea = Configurable(value);
    }

    public ushort MsixVector { get; set; }

    public bool Enabled { get; private set; }

    /// <summary>VIRTIO_RING_F_EVENT_IDX was negotiated: used_event/avail_event govern notifications.</summary>
    public bool EventIdx { get; set; }

    /// <summary>VIRTIO_RING_F_INDIRECT_DESC was negotiated.</summary>
    public bool IndirectDescriptors { get; set; }

    /// <summary>The next available-ring slot the device will consume.</summary>
    public ushort LastAvailIndex { get; private set; }

    /// <summary>The used index the device publishes next.</summary>
    public ushort UsedIndex { get; private set; }

    public static ulong DescriptorTableBytes(int size) => (ulong)size * DescriptorChain.DescriptorSize;

    public static ulong DriverAreaBytes(int size) => 6 + (2 * (ulong)size);

    public static ulong DeviceAreaBytes(int size) => 6 + (8 * (ulong)size);

    public void Reset()
    {
        Enabled = false;
        Size = MaxSize;
        DescriptorTableAddress = 0;
        DriverAreaAddress = 0;
        DeviceAreaAddress = 0;
        MsixVector = NoVector;
        EventIdx = false;
        IndirectDescriptors = false;
        LastAvailIndex = 0;
        UsedIndex = 0;
        _signalledUsed = 0;
    }

    /// <summary>Checks the driver's configuration and starts the queue; throws <see cref="VirtqueueException"/>.</summary>
    public void Enable()
    {
        if (Size == 0 || Size > MaxSize || (Size & (Size - 1)) != 0)
        {
            throw new VirtqueueException($"queue {Index}: size {Size} is not a power of two up to {MaxSize}");
        }

        if ((DescriptorTableAddress & 15) != 0 || (DriverAreaAddress & 1) != 0 || (DeviceAreaAddress & 3) != 0)
        {
            throw new VirtqueueException($"queue {Index}: ring addresses are misaligned");
        }

        CheckArea("descriptor table", DescriptorTableAddress, DescriptorTableBytes(Size));
        CheckArea("driver area", DriverAreaAddress, DriverAreaBytes(Size));
        CheckArea("device area", DeviceAreaAddress, DeviceAreaBytes(Size));
        Enabled = true;
    }

    /// <summary>The driver's available index (acquire: ring entries written before it are visible).</summary>
    public ushort ReadAvailIndex() => Volatile.Read(ref U16(DriverAreaAddress + 2));

    /// <summary>Pops the next available chain, or returns false when the ring is empty.</summary>
    public bool TryPop(out DescriptorChain chain)
    {
        chain = null!;
        if (!Enabled)
        {
            return false;
        }

        ushort available = ReadAvailIndex();
        ushort pending = (ushort)(available - LastAvailIndex);
        if (pending == 0)
        {
            return false;
        }

        if (pending > Size)
        {
            throw new VirtqueueException($"queue {Index}: available index {available} ran {pending} entries ahead of the device (size {Size})");
        }

        ushort head = Volatile.Read(ref U16(DriverAreaAddress + 4 + (2 * (ulong)(LastAvailIndex % Size))));
        chain = DescriptorChain.Read(_memory, DescriptorTableAddress, Size, head, IndirectDescriptors, MaxSize);
        LastAvailIndex++;
        return true;
    }

    /// <summary>
    /// Returns a chain to the driver: the element first, then (release) the new used index.
    /// With <paramref name="publish"/> false the index is left for <see cref="PublishUsed"/>, so
    /// several elements (one merged receive packet) become visible at once.
    /// </summary>
    public void PushUsed(ushort head, uint writtenLength, bool publish = true)
    {
        ulong element = DeviceAreaAddress + 4 + (8 * (ulong)(UsedIndex % Size));
        if (!_memory.AllowsDeviceWrite(element, 8))
        {
            // A used ring moved into the guest's locked kernel (docs/security.md).
            throw new VirtqueueException($"used ring element at 0x{element:x} is in protected guest memory");
        }

        Span<byte> slot = _memory.GetSpan(element, 8);
        MemoryMarshal.Write(slot, (uint)head);
        MemoryMarshal.Write(slot[4..], writtenLength);
        _memory.NotifyExternalWrite(element, 8);
        UsedIndex++;
        if (publish)
        {
            PublishUsed();
        }
    }

    /// <summary>Makes every element pushed so far visible to the driver (release store of used->idx).</summary>
    public void PublishUsed()
    {
        StoreU16(DeviceAreaAddress + 2, UsedIndex);
    }

    /// <summary>Gives back the last <paramref name="count"/> popped chains unused (nothing was pushed for them).</summary>
    public void UndoPop(int count) => LastAvailIndex -= (ushort)count;

    /// <summary>
    /// Whether the driver wants an interrupt for the used entries pushed since the last call:
    /// with EVENT_IDX when the used index passed used_event, otherwise unless the driver set
    /// VRING_AVAIL_F_NO_INTERRUPT.
    /// </summary>
    public bool NeedsNotification()
    {
        // The used index must be visible before the driver's suppression fields are read.
        Interlocked.MemoryBarrier();
        ushort old = _signalledUsed;
        ushort current = UsedIndex;
        _signalledUsed = current;
        if (old == current)
        {
            return false;
        }

        if (EventIdx)
        {
            ushort usedEvent = Volatile.Read(ref U16(DriverAreaAddress + 4 + (2 * (ulong)Size)));
            return (ushort)(current - usedEvent - 1) < (ushort)(current - old);
        }

        return (Volatile.Read(ref U16(DriverAreaAddress)) & AvailFlagNoInterrupt) == 0;
    }

    /// <summary>Asks the driver not to notify while the device is draining the ring (no-op with EVENT_IDX).</summary>
    public void DisableNotifications()
    {
        if (!EventIdx)
        {
            StoreU16(DeviceAreaAddress, UsedFlagNoNotify);
        }
    }

    /// <summary>
    /// Asks the driver to notify for the next buffer (avail_event = last consumed with EVENT_IDX)
    /// and returns true when buffers arrived meanwhile, so the caller drains again.
    /// </summary>
    public bool EnableNotifications()
    {
        if (EventIdx)
        {
            StoreU16(DeviceAreaAddress + 4 + (8 * (ulong)Size), LastAvailIndex);
        }
        else
        {
            StoreU16(DeviceAreaAddress, 0);
        }

        Interlocked.MemoryBarrier();
        return ReadAvailIndex() != LastAvailIndex;
    }

    /// <summary>
    /// The rings were validated for the size and addresses they had when the queue was enabled;
    /// changing them afterwards would let the device write where nobody checked.
    /// </summary>
    private T Configurable<T>(T value)
    {
        if (Enabled)
        {
            throw new InvalidOperationException($"queue {Index} is enabled: its size and ring addresses are fixed until reset");
        }

        return value;
    }

    private void CheckArea(string name, ulong address, ulong length)
    {
        if (address == 0 && length != 0 && !_memory.IsValid(address, length))
        {
            throw new VirtqueueException($"queue {Index}: {name} is not set");
        }

        if (!_memory.IsValid(address, length))
        {
            throw new VirtqueueException($"queue {Index}: {name} 0x{address:x}+0x{length:x} is outside guest memory");
        }
    }

    /// <summary>A release store of a ring field, reported like any device write to guest memory.</summary>
    private void StoreU16(ulong address, ushort value)
    {
        Volatile.Write(ref U16(address), value);
        _memory.NotifyExternalWrite(address, 2);
    }

    private ref ushort U16(ulong address) => ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(_memory.GetSpan(address, 2)));

    /// <summary>
    /// The queue's configuration and ring indices. <paramref name="held"/> chains popped but not
    /// yet used (a balloon's statistics buffer) are given back: the restored device pops them again.
    /// </summary>
    public void Save(SnapshotWriter w, int held)
    {
        w.Write(_size);
        w.Write(_descriptorTable);
        w.Write(_driverArea);
        w.Write(_deviceArea);
        w.Write(MsixVector);
        w.Write(Enabled);
        w.Write(EventIdx);
        w.Write(IndirectDescriptors);
        w.Write((ushort)(LastAvailIndex - held));
        w.Write(UsedIndex);
        w.Write(_signalledUsed);
    }

    public void Load(SnapshotReader r)
    {
        Reset();
        Size = r.ReadUInt16();
        DescriptorTableAddress = r.ReadUInt64();
        DriverAreaAddress = r.ReadUInt64();
        DeviceAreaAddress = r.ReadUInt64();
        MsixVector = r.ReadUInt16();
        bool enabled = r.ReadBoolean();
        EventIdx = r.ReadBoolean();
        IndirectDescriptors = r.ReadBoolean();
        LastAvailIndex = r.ReadUInt16();
        UsedIndex = r.ReadUInt16();
        _signalledUsed = r.ReadUInt16();
        if (enabled)
        {
            try
            {
                Enable();
            }
            catch (VirtqueueException e)
            {
                throw r.Invalid(e.Message);
            }
        }
    }
}
