using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using SharpVisor.Devices.Pci;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// The modern (virtio 1.x §4.1) PCI transport for one <see cref="VirtioDevice"/>. Everything
/// lives in BAR0, a 64-bit 32 KiB memory BAR:
/// <code>
/// 0x0000 common configuration (features, status, queue set-up)
/// 0x1000 ISR status (read to clear; INTx only)
/// 0x2000 device-specific configuration
/// 0x3000 queue notifications: queue n at 0x3000 + 4n (notify_off_multiplier 4)
/// 0x4000 MSI-X table (queues + 1 vectors), 0x5000 MSI-X pending bits
/// </code>
/// Notifications go to <see cref="VirtioDevice.Notify"/>; used buffers and configuration changes
/// come back as MSI-X messages, or as INTx# with ISR bits while the driver has MSI-X off.
/// </summary>
public sealed class VirtioPciDevice : PciDevice, IVirtioTransport
{
    public const ushort VirtioVendorId = 0x1AF4;
    public const ushort ModernDeviceIdBase = 0x1040;
    public const ushort ModernSubsystemId = 0x1100;
    public const byte VendorCapabilityId = 0x09;

    public const int BarIndex = 0;
    public const ulong BarSize = 0x8000;
    public const ulong CommonConfigOffset = 0x0000;
    public const int CommonConfigLength = 0x38;
    public const ulong IsrOffset = 0x1000;
    public const ulong DeviceConfigOffset = 0x2000;
    public const int DeviceConfigMaxLength = 0x1000;
    public const ulong NotifyOffset = 0x3000;
    public const uint NotifyOffMultiplier = 4;
    public const ulong MsixTableOffset = 0x4000;
    public const ulong MsixPbaOffset = 0x5000;

    public const byte IsrQueue = 1;
    public const byte IsrConfig = 2;

    private readonly int _pciCfgCapability;

    // The transport's register file: written and read as a whole under _registerLock, so two
    // vCPUs see each other's writes in some order, never half of one.
    private readonly object _registerLock = new();
    private uint _deviceFeatureSelect;
    private uint _driverFeatureSelect;
    private ushort _queueSelect;
    private volatile ushort _configMsixVector = Virtqueue.NoVector;

    // ISR and the INTx line change together under _isrLock: the line is always _isr != 0.
    private readonly object _isrLock = new();
    private int _isr;

    public VirtioPciDevice(VirtioDevice device)
        : base(device.Name, IdFor(device.DeviceType))
    {
        if (device.ConfigSize > DeviceConfigMaxLength || device.Queues.Count > 255)
        {
            throw new ArgumentException($"{device.Name} does not fit the virtio-pci BAR layout", nameof(device));
        }

        Device = device;
        device.Transport = this;
        Config.SetByte(PciConfigSpace.InterruptPin, 1);
        Bar = AddMemoryBar(BarIndex, BarSize, is64Bit: true);

        AddVirtioCapability(VirtioPciCapabilityType.CommonConfig, CommonConfigOffset, CommonConfigLength);
        AddVirtioCapability(VirtioPciCapabilityType.IsrConfig, IsrOffset, 1);
        if (device.ConfigSize > 0)
        {
            AddVirtioCapability(VirtioPciCapabilityType.DeviceConfig, DeviceConfigOffset, (uint)device.ConfigSize);
        }

        int notify = AddVirtioCapability(VirtioPciCapabilityType.NotifyConfig, NotifyOffset, (uint)(Math.Max(1, device.Queues.Count) * NotifyOffMultiplier), 20);
        Config.SetUInt32(notify + 16, NotifyOffMultiplier);

        // The PCI configuration access capability: a window onto BAR0 through config space.
        _pciCfgCapability = AddVirtioCapability(VirtioPciCapabilityType.PciConfig, 0, 0, 20);
        Config.SetWritable(_pciCfgCapability + 4, 1, 0xFF);
        Config.SetWritable(_pciCfgCapability + 8, 8, ulong.MaxValue);
        Config.SetWritable(_pciCfgCapability + 16, 4, 0xFFFF_FFFF);

        int msixOffset = AddCapability(MsixCapability.CapabilityId, MsixCapability.CapabilityLength);
        Msix = new MsixCapability(this, msixOffset, device.Queues.Count + 1, BarIndex, (uint)MsixTableOffset, (uint)MsixPbaOffset);
    }

    public VirtioDevice Device { get; }

    public PciBar Bar { get; }

    public MsixCapability Msix { get; }

    /// <summary>The vector for configuration changes, or NO_VECTOR.</summary>
    public ushort ConfigMsixVector => _configMsixVector;

    /// <summary>Bytes a driver writes to notify a queue (a 16-bit write), for ioeventfd registration.</summary>
    public static int NotifyAccessLength => 2;

    /// <summary>
    /// The guest physical address the driver writes to notify queue <paramref name="queue"/>, or
    /// null while BAR0 is not decoded. An accelerator registers <see cref="VirtioDevice.GetNotifyEvent"/>
    /// here as an ioeventfd, and again after <see cref="PciDevice.BarMappingChanged"/>.
    /// </summary>
    public ulong? QueueNotifyAddress(int queue) =>
        Bar.MappedAddress is ulong b && (uint)queue < (uint)Device.Queues.Count ? b + NotifyOffset + ((ulong)queue * NotifyOffMultiplier) : null;

    public override void ReadBar(int index, ulong offset, Span<byte> data)
    {
        data.Clear();
        if (index != BarIndex)
        {
            return;
        }

        try
        {
            ReadBar0(offset, data);
        }
        catch (Exception e)
        {
            // A register access runs on a vCPU thread: a device bug fails the device, not the machine.
            Device.Fail($"internal error reading BAR0+0x{offset:x}: {e.GetType().Name}: {e.Message}");
        }
    }

    public override void WriteBar(int index, ulong offset, ReadOnlySpan<byte> data)
    {
        if (index != BarIndex)
        {
            return;
        }

        try
        {
            WriteBar0(offset, data);
        }
        catch (Exception e)
        {
            Device.Fail($"internal error writing BAR0+0x{offset:x}: {e.GetType().Name}: {e.Message}");
        }
    }

    public void SignalQueue(Virtqueue queue)
    {
        if (Msix.Enabled)
        {
            if (queue.MsixVector != Virtqueue.NoVector)
            {
                Msix.Signal(queue.MsixVector);
            }

            return;
        }

        RaiseIsr(IsrQueue);
    }

    public void SignalConfigChange()
    {
        if (Msix.Enabled)
        {
            ushort vector = _configMsixVector;
            if (vector != Virtqueue.NoVector)
            {
                Msix.Signal(vector);
            }

            return;
        }

        RaiseIsr(IsrConfig);
    }

    private void ReadBar0(ulong offset, Span<byte> data)
    {
        if (offset < CommonConfigOffset + CommonConfigLength)
        {
            ReadCommonConfig((int)offset, data);
        }
        else if (offset >= IsrOffset && offset < IsrOffset + 4)
        {
            if (offset == IsrOffset)
            {
                // Reading ISR acknowledges the interrupt and de-asserts INTx#.
                lock (_isrLock)
                {
                    data[0] = (byte)_isr;
                    _isr = 0;
                    SetIntx(false);
                }
            }
        }
        else if (offset >= DeviceConfigOffset && offset < DeviceConfigOffset + DeviceConfigMaxLength)
        {
            int o = (int)(offset - DeviceConfigOffset);
            if (o + data.Length <= Device.ConfigSize)
            {
                Device.ReadConfig(o, data);
            }
        }
        else if (offset >= MsixTableOffset && offset < MsixTableOffset + (ulong)Msix.TableSize)
        {
            Msix.ReadTable(offset - MsixTableOffset, data);
        }
        else if (offset >= MsixPbaOffset && offset < MsixPbaOffset + (ulong)Msix.PbaSize)
        {
            Msix.ReadPba(offset - MsixPbaOffset, data);
        }
    }

    private void WriteBar0(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset < CommonConfigOffset + CommonConfigLength)
        {
            WriteCommonConfig((int)offset, data);
        }
        else if (offset >= NotifyOffset && offset < NotifyOffset + ((ulong)Device.Queues.Count * NotifyOffMultiplier))
        {
            Device.Notify((int)((offset - NotifyOffset) / NotifyOffMultiplier));
        }
        else if (offset >= DeviceConfigOffset && offset < DeviceConfigOffset + DeviceConfigMaxLength)
        {
            int o = (int)(offset - DeviceConfigOffset);
            if (o + data.Length <= Device.ConfigSize)
            {
                Device.WriteConfig(o, data);
            }
        }
        else if (offset >= MsixTableOffset && offset < MsixTableOffset + (ulong)Msix.TableSize)
        {
            Msix.WriteTable(offset - MsixTableOffset, data);
        }
    }

    private void RaiseIsr(int bits)
    {
        lock (_isrLock)
        {
            _isr |= bits;
            SetIntx(true);
        }
    }

    protected override void OnConfigRead(int offset, int length)
    {
        int data = _pciCfgCapability + 16;
        if (offset < data + 4 && data < offset + length)
        {
            Span<byte> value = stackalloc byte[4];
            if (TryGetPciCfgWindow(out ulong barOffset, out int windowLength))
            {
                ReadBar(BarIndex, barOffset, value[..windowLength]);
            }

            Config.SetUInt32(data, BinaryPrimitives.ReadUInt32LittleEndian(value));
        }
    }

    protected override void OnConfigWritten(int offset, int length)
    {
        if (Msix.Covers(offset, length))
        {
            Msix.OnControlWritten();
        }

        int data = _pciCfgCapability + 16;
        if (offset < data + 4 && data < offset + length && TryGetPciCfgWindow(out ulong barOffset, out int windowLength))
        {
            Span<byte> value = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(value, Config.ReadUInt32(data));
            WriteBar(BarIndex, barOffset, value[..windowLength]);
        }
    }

    private static PciDeviceId IdFor(VirtioDeviceType type)
    {
        (byte classCode, byte subClass) = type switch
        {
            VirtioDeviceType.Net => ((byte)0x02, (byte)0x00),
            VirtioDeviceType.Block => ((byte)0x01, (byte)0x00),
            VirtioDeviceType.Console => ((byte)0x07, (byte)0x80),
            _ => ((byte)0xFF, (byte)0x00),
        };
        return new PciDeviceId(VirtioVendorId, (ushort)(ModernDeviceIdBase + (ushort)type), classCode, subClass,
            RevisionId: 1, SubsystemVendorId: VirtioVendorId, SubsystemId: ModernSubsystemId);
    }

    private int AddVirtioCapability(VirtioPciCapabilityType type, ulong offset, uint length, int capabilityLength = 16)
    {
        int at = AddCapability(VendorCapabilityId, capabilityLength);
        Config.SetByte(at + 2, (byte)capabilityLength);
        Config.SetByte(at + 3, (byte)type);
        Config.SetByte(at + 4, BarIndex);
        Config.SetUInt32(at + 8, (uint)offset);
        Config.SetUInt32(at + 12, length);
        return at;
    }

    private bool TryGetPciCfgWindow(out ulong barOffset, out int length)
    {
        barOffset = Config.ReadUInt32(_pciCfgCapability + 8);
        length = (int)Config.ReadUInt32(_pciCfgCapability + 12);
        return Config.ReadByte(_pciCfgCapability + 4) == BarIndex && length is 1 or 2 or 4 && barOffset % (ulong)length == 0 && barOffset < BarSize;
    }

    private void ReadCommonConfig(int offset, Span<byte> data)
    {
        Span<byte> regs = stackalloc byte[CommonConfigLength];
        lock (_registerLock)
        {
            SnapshotCommonConfig(regs);
        }

        for (int i = 0; i < data.Length; i++)
        {
            data[i] = offset + i < CommonConfigLength ? regs[offset + i] : (byte)0;
        }
    }

    private void WriteCommonConfig(int offset, ReadOnlySpan<byte> data)
    {
        lock (_registerLock)
        {
            WriteCommonConfigLocked(offset, data);
        }
    }

    private void WriteCommonConfigLocked(int offset, ReadOnlySpan<byte> data)
    {
        Span<byte> regs = stackalloc byte[CommonConfigLength];
        SnapshotCommonConfig(regs);
        int end = Math.Min(CommonConfigLength, offset + data.Length);
        data[..(end - offset)].CopyTo(regs[offset..]);

        Virtqueue? q = _queueSelect < Device.Queues.Count ? Device.Queues[_queueSelect] : null;
        bool Touches(int field, int size) => offset < field + size && field < end;

        if (Touches(0x00, 4))
        {
            _deviceFeatureSelect = BinaryPrimitives.ReadUInt32LittleEndian(regs[0x00..]);
        }

        if (Touches(0x08, 4))
        {
            _driverFeatureSelect = BinaryPrimitives.ReadUInt32LittleEndian(regs[0x08..]);
        }

        if (Touches(0x0C, 4))
        {
            Device.WriteDriverFeatures(_driverFeatureSelect, BinaryPrimitives.ReadUInt32LittleEndian(regs[0x0C..]));
        }

        if (Touches(0x10, 2))
        {
            _configMsixVector = ValidVector(BinaryPrimitives.ReadUInt16LittleEndian(regs[0x10..]));
        }

        if (Touches(0x14, 1))
        {
            byte status = regs[0x14];
            Device.WriteStatus(status);
            if (status == 0)
            {
                ResetTransport();
            }
        }

        if (Touches(0x16, 2))
        {
            _queueSelect = BinaryPrimitives.ReadUInt16LittleEndian(regs[0x16..]);
        }

        if (q is null)
        {
            return;
        }

        if (Touches(0x1A, 2))
        {
            q.MsixVector = ValidVector(BinaryPrimitives.ReadUInt16LittleEndian(regs[0x1A..]));
        }

        // Size and ring addresses change only while the queue is disabled (the driver sets them
        // up first), and only under the device lock that also guards enabling and serving it.
        bool setsUpRings = Touches(0x18, 2) || Touches(0x20, 8) || Touches(0x28, 8) || Touches(0x30, 8);
        if (setsUpRings)
        {
            ushort size = BinaryPrimitives.ReadUInt16LittleEndian(regs[0x18..]);
            ulong descriptors = BinaryPrimitives.ReadUInt64LittleEndian(regs[0x20..]);
            ulong driverArea = BinaryPrimitives.ReadUInt64LittleEndian(regs[0x28..]);
            ulong deviceArea = BinaryPrimitives.ReadUInt64LittleEndian(regs[0x30..]);
            bool size16 = Touches(0x18, 2);
            bool desc64 = Touches(0x20, 8);
            bool driver64 = Touches(0x28, 8);
            bool device64 = Touches(0x30, 8);
            Device.ConfigureQueue(q.Index, queue =>
            {
                // Fields not written keep the queue's current value, read under the lock.
                if (size16)
                {
                    queue.Size = size;
                }

                if (desc64)
                {
                    queue.DescriptorTableAddress = MergeHalf(queue.DescriptorTableAddress, descriptors, offset, end, 0x20);
                }

                if (driver64)
                {
                    queue.DriverAreaAddress = MergeHalf(queue.DriverAreaAddress, driverArea, offset, end, 0x28);
                }

                if (device64)
                {
                    queue.DeviceAreaAddress = MergeHalf(queue.DeviceAreaAddress, deviceArea, offset, end, 0x30);
                }
            });
        }

        if (Touches(0x1C, 2) && BinaryPrimitives.ReadUInt16LittleEndian(regs[0x1C..]) == 1)
        {
            Device.EnableQueue(q.Index);
        }
    }

    /// <summary>
    /// The bytes of a 64-bit register that the write covered come from <paramref name="written"/>,
    /// the rest from <paramref name="current"/> (a driver writes the halves separately).
    /// </summary>
    private static ulong MergeHalf(ulong current, ulong written, int offset, int end, int field)
    {
        ulong mask = 0;
        for (int b = 0; b < 8; b++)
        {
            if (field + b >= offset && field + b < end)
            {
                mask |= 0xFFUL << (8 * b);
            }
        }

        return (current & ~mask) | (written & mask);
    }

    private void SnapshotCommonConfig(Span<byte> regs)
    {
        regs.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(regs[0x00..], _deviceFeatureSelect);
        BinaryPrimitives.WriteUInt32LittleEndian(regs[0x04..], Device.ReadDeviceFeatures(_deviceFeatureSelect));
        BinaryPrimitives.WriteUInt32LittleEndian(regs[0x08..], _driverFeatureSelect);
        BinaryPrimitives.WriteUInt32LittleEndian(regs[0x0C..], _driverFeatureSelect < 2 ? (uint)(Device.DriverFeatures >> (int)(32 * _driverFeatureSelect)) : 0);
        BinaryPrimitives.WriteUInt16LittleEndian(regs[0x10..], _configMsixVector);
        BinaryPrimitives.WriteUInt16LittleEndian(regs[0x12..], (ushort)Device.Queues.Count);
        regs[0x14] = (byte)Device.Status;
        regs[0x15] = Device.ConfigGeneration;
        BinaryPrimitives.WriteUInt16LittleEndian(regs[0x16..], _queueSelect);
        if (_queueSelect < Device.Queues.Count)
        {
            Virtqueue q = Device.Queues[_queueSelect];
            BinaryPrimitives.WriteUInt16LittleEndian(regs[0x18..], q.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(regs[0x1A..], q.MsixVector);
            BinaryPrimitives.WriteUInt16LittleEndian(regs[0x1C..], q.Enabled ? (ushort)1 : (ushort)0);
            BinaryPrimitives.WriteUInt16LittleEndian(regs[0x1E..], _queueSelect);
            BinaryPrimitives.WriteUInt64LittleEndian(regs[0x20..], q.DescriptorTableAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(regs[0x28..], q.DriverAreaAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(regs[0x30..], q.DeviceAreaAddress);
        }
    }

    /// <summary>A vector outside the table reads back as NO_VECTOR: the driver learns the mapping failed.</summary>
    private ushort ValidVector(ushort vector) => vector < Msix.VectorCount ? vector : Virtqueue.NoVector;

    private void ResetTransport()
    {
        _configMsixVector = Virtqueue.NoVector;
        _deviceFeatureSelect = 0;
        _driverFeatureSelect = 0;
        _queueSelect = 0;
        lock (_isrLock)
        {
            _isr = 0;
            SetIntx(false);
        }
    }

    protected override void SaveDeviceState(SnapshotWriter w)
    {
        Msix.Save(w);
        lock (_registerLock)
        {
            w.Write(_deviceFeatureSelect);
            w.Write(_driverFeatureSelect);
            w.Write(_queueSelect);
            w.Write(_configMsixVector);
        }

        lock (_isrLock)
        {
            w.Write(_isr);
        }

        Device.SaveState(w);
    }

    protected override void LoadDeviceState(SnapshotReader r)
    {
        Msix.Load(r);
        lock (_registerLock)
        {
            _deviceFeatureSelect = r.ReadUInt32();
            _driverFeatureSelect = r.ReadUInt32();
            _queueSelect = r.ReadUInt16();
            _configMsixVector = r.ReadUInt16();
        }

        lock (_isrLock)
        {
            _isr = r.ReadInt32() & (IsrQueue | IsrConfig);
        }

        Device.LoadState(r);
    }
}
