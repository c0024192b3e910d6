using SharpVisor.Memory;

namespace SharpVisor.Machine.Protection;

/// <summary>
/// One domain's locked kernel, as the accelerators enforce it: the guest frames no vCPU and no
/// device may write, the linear ranges where supervisor code may run, and the pinned registers.
/// Empty and unlocked until the monitor locks it (once); from then on it never changes, so the
/// vCPUs read it without locks. <see cref="Generation"/> changes at the lock: a vCPU that sees a
/// new generation drops the translations and code it cached under the old rules.
/// </summary>
public sealed class ProtectionMap : IDeviceWriteGuard
{
    private readonly object _lockGate = new();
    private ulong[] _frames = [];
    private ProtectedRange[] _writeProtected = [];
    private ProtectedRange[] _supervisorExecutable = [];
    private RegisterPins _pins = RegisterPins.None;
    private DescriptorTableFrame[] _descriptorTables = [];
    private bool _protectsDescriptorTables;
    private volatile bool _locked;
    private volatile bool _enforce;
    private int _generation;

    /// <param name="monitor">Decides when to lock and receives the violations.</param>
    /// <param name="enforce">False: log mode — violations are reported, nothing is blocked.</param>
    public ProtectionMap(IProtectionMonitor monitor, bool enforce)
    {
        ArgumentNullException.ThrowIfNull(monitor);
        Monitor = monitor;
        _enforce = enforce;
    }

    public IProtectionMonitor Monitor { get; }

    /// <summary>Whether violations are blocked; log mode can be raised to enforce at run time, never back.</summary>
    public bool Enforce => _enforce;

    public bool IsLocked => _locked;

    /// <summary>Changes when the rules change (the lock).</summary>
    public int Generation => Volatile.Read(ref _generation);

    public RegisterPins Pins => _pins;

    /// <summary>The write-protected guest-physical ranges (page-aligned).</summary>
    public IReadOnlyList<ProtectedRange> WriteProtected => _writeProtected;

    /// <summary>Where supervisor-mode code may run after the lock (linear); empty: anywhere.</summary>
    public IReadOnlyList<ProtectedRange> SupervisorExecutable => _supervisorExecutable;

    /// <summary>
    /// Whether each vCPU's GDT is to be locked too: the vCPU registers the table it uses
    /// (<see cref="ProtectDescriptorTable"/>) when it first sees the locked map.
    /// </summary>
    public bool ProtectsDescriptorTables => _protectsDescriptorTables;

    /// <summary>The locked GDTs, one per vCPU that registered its own.</summary>
    public IReadOnlyList<DescriptorTableFrame> DescriptorTables => _descriptorTables;

    /// <summary>
    /// Locks the kernel: from now on the guest-physical <paramref name="writeProtected"/> ranges are
    /// read-only to vCPUs and devices, supervisor code runs only inside <paramref name="supervisorExecutable"/>
    /// (none given: not restricted), and <paramref name="pins"/> hold. Only the first call locks.
    /// With <paramref name="descriptorTables"/>, every vCPU's GDT is locked as the vCPU registers it.
    /// </summary>
    public bool Lock(IEnumerable<ProtectedRange> writeProtected, IEnumerable<ProtectedRange> supervisorExecutable, RegisterPins pins, bool descriptorTables = false)
    {
        ArgumentNullException.ThrowIfNull(pins);
        lock (_lockGate)
        {
            if (_locked)
            {
                return false;
            }

            ProtectedRange[] ranges = writeProtected
                .Select(r => new ProtectedRange(r.Start & ~0xFFFUL, (r.End + 0xFFF) & ~0xFFFUL))
                .Where(r => r.End > r.Start)
                .OrderBy(r => r.Start)
                .ToArray();
            ulong frameCount = ranges.Length == 0 ? 0 : ranges.Max(r => r.End) >> 12;
            if (frameCount > GuestMemory.MaxRamSize >> 12)
            {
                throw new ArgumentException($"protected range ends above the largest guest memory (0x{frameCount << 12:x})");
            }

            var frames = new ulong[(frameCount + 63) / 64];
            foreach (ProtectedRange r in ranges)
            {
                for (ulong frame = r.Start >> 12; frame < r.End >> 12; frame++)
                {
                    frames[frame >> 6] |= 1UL << (int)(frame & 63);
                }
            }

            _frames = frames;
            _writeProtected = ranges;
            _supervisorExecutable = supervisorExecutable.Where(r => r.End > r.Start).ToArray();
            _pins = pins;
            _protectsDescriptorTables = descriptorTables;
            _locked = true;
            Interlocked.Increment(ref _generation);
            return true;
        }
    }

    /// <summary>
    /// Locks the GDT a vCPU uses (<paramref name="physicalAddress"/>: where its GDTR base maps;
    /// the table must lie in one frame). From then on a store to the frame may change only the TLS
    /// descriptors and the TSS busy bit (<see cref="AllowsDescriptorTableStore"/>). False when the
    /// map does not lock descriptor tables, is not locked, or the table does not fit one frame.
    /// </summary>
    public bool ProtectDescriptorTable(int vcpu, ulong physicalAddress, ushort limit)
    {
        if ((physicalAddress & 0xFFF) + limit >= 0x1000)
        {
            return false;
        }

        lock (_lockGate)
        {
            if (!_locked || !_protectsDescriptorTables)
            {
                return false;
            }

            var table = new DescriptorTableFrame(vcpu, physicalAddress & ~0xFFFUL, (int)(physicalAddress & 0xFFF), limit);
            _descriptorTables = [.. _descriptorTables.Where(t => t.Vcpu != vcpu), table];
            return true;
        }
    }

    /// <summary>Whether the guest frame of <paramref name="physicalAddress"/> holds a locked GDT.</summary>
    public bool IsDescriptorTableFrame(ulong physicalAddress) => FindDescriptorTable(physicalAddress) is not null;

    /// <summary>
    /// Whether a store of <paramref name="data"/> at <paramref name="physicalAddress"/> (within one
    /// frame), over the bytes there now (<paramref name="current"/>), leaves a locked GDT's
    /// descriptors as they are: only the TLS slots (entries 12-14, which Linux rewrites on every
    /// context switch) and the TSS descriptor's busy bit (which LTR sets) may change; bytes past
    /// the table's limit are no descriptors. Equal bytes are always allowed.
    /// </summary>
    public bool AllowsDescriptorTableStore(ulong physicalAddress, ReadOnlySpan<byte> current, ReadOnlySpan<byte> data)
    {
        if (FindDescriptorTable(physicalAddress) is not { } table)
        {
            return true;
        }

        int start = (int)(physicalAddress & 0xFFF) - table.Offset;
        for (int i = 0; i < data.Length && i < current.Length; i++)
        {
            int at = start + i;
            byte changed = (byte)(data[i] ^ current[i]);
            if (changed == 0 || at < 0 || at > table.Limit || (at >= TlsFirstByte && at < TlsEndByte))
            {
                continue;
            }

            if (at == TssAccessByte && changed == TssBusyBit)
            {
                continue;
            }

            return false;
        }

        return true;
    }

    // x86-64 Linux's GDT layout: TLS entries 12-14, the TSS descriptor at entry 8 (its type's bit 1 is "busy").
    private const int TlsFirstByte = 12 * 8;
    private const int TlsEndByte = 15 * 8;
    private const int TssAccessByte = (8 * 8) + 5;
    private const byte TssBusyBit = 0x02;

    private DescriptorTableFrame? FindDescriptorTable(ulong physicalAddress)
    {
        ulong frame = physicalAddress & ~0xFFFUL;
        foreach (DescriptorTableFrame table in _descriptorTables)
        {
            if (table.Frame == frame)
            {
                return table;
            }
        }

        return null;
    }

    /// <summary>From now on violations are blocked (a running domain's policy raised from mode=log).</summary>
    public void EnforceFromNow() => _enforce = true;

    /// <summary>Whether the guest frame of <paramref name="physicalAddress"/> is write-protected (false before the lock).</summary>
    public bool IsWriteProtected(ulong physicalAddress)
    {
        ulong frame = physicalAddress >> 12;
        ulong[] frames = _frames;
        ulong word = frame >> 6;
        return word < (ulong)frames.Length && (frames[word] & (1UL << (int)(frame & 63))) != 0;
    }

    /// <summary>Whether any frame of the range is write-protected.</summary>
    public bool IsAnyWriteProtected(ulong physicalAddress, ulong length)
    {
        if (length == 0 || !_locked)
        {
            return false;
        }

        ulong last = physicalAddress + length - 1;
        if (last < physicalAddress)
        {
            last = ulong.MaxValue;
        }

        ulong limit = (ulong)_frames.Length * 64;
        for (ulong frame = physicalAddress >> 12; frame <= last >> 12 && frame < limit; frame++)
        {
            if (IsWriteProtected(frame << 12))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether a device write of the range would touch a locked GDT's frame (DMA is refused there as a whole).</summary>
    private bool TouchesDescriptorTable(ulong address, ulong length)
    {
        ulong last = length == 0 ? address : address + length - 1;
        foreach (DescriptorTableFrame table in _descriptorTables)
        {
            if (length != 0 && table.Frame <= last && address < table.Frame + 0x1000)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether supervisor-mode code may run at <paramref name="linear"/> (always before the lock).</summary>
    public bool IsSupervisorExecutable(ulong linear)
    {
        ProtectedRange[] ranges = _supervisorExecutable;
        if (!_locked || ranges.Length == 0)
        {
            return true;
        }

        foreach (ProtectedRange r in ranges)
        {
            if (r.Contains(linear))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Reports a violation to the monitor; true when it is to be blocked (enforce mode).</summary>
    public bool Report(ProtectionViolationKind kind, int vcpu, ulong rip, ulong target, ulong value)
    {
        var violation = new ProtectionViolation(kind, vcpu, rip, target, value, Enforce);
        try
        {
            Monitor.OnViolation(violation);
        }
        catch (Exception)
        {
            // A monitor must not throw; if one does, the verdict still stands.
        }

        return Enforce;
    }

    /// <summary>Device DMA: refused (and reported) when it would write a protected frame and the map enforces.</summary>
    public bool AllowsDeviceWrite(ulong address, ulong length)
    {
        if (!IsAnyWriteProtected(address, length) && !TouchesDescriptorTable(address, length))
        {
            return true;
        }

        return !Report(ProtectionViolationKind.DeviceWrite, -1, 0, address, length);
    }
}
