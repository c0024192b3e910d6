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
    /// Locks the kernel: from now on the guest-physical <paramref name="writeProtected"/> ranges are
    /// read-only to vCPUs and devices, supervisor code runs only inside <paramref name="supervisorExecutable"/>
    /// (none given: not restricted), and <paramref name="pins"/> hold. Only the first call locks.
    /// </summary>
    public bool Lock(IEnumerable<ProtectedRange> writeProtected, IEnumerable<ProtectedRange> supervisorExecutable, RegisterPins pins)
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
            _locked = true;
            Interlocked.Increment(ref _generation);
            return true;
        }
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
        if (!IsAnyWriteProtected(address, length))
        {
            return true;
        }

        return !Report(ProtectionViolationKind.DeviceWrite, -1, 0, address, length);
    }
}
