using System.Globalization;
using SharpVisor.Machine.Protection;
using SharpVisor.Memory;

namespace SharpVisor.Security;

/// <summary>
/// One domain's kernel protection (docs/security.md): owns the <see cref="ProtectionMap"/> the
/// accelerator enforces, locks it when the kernel has finished boot-time patching, reports and
/// counts violations, and measures the locked state (golden at lock, then periodically and on demand).
/// </summary>
/// <remarks>
/// When to lock: at a vCPU's entry to user mode (CPL 3) once the kernel maps its read-only data
/// read-only. Linux's <c>mark_rodata_ro()</c> runs right before it starts init, after alternatives,
/// jump labels and the freeing of init memory; user-mode helpers that run earlier (modprobe) see
/// <c>.rodata</c> still writable, so the lock waits for a later entry.
/// </remarks>
public sealed class KernelProtector : IProtectionMonitor, IDisposable
{
    /// <summary>x86-64's kernel image mapping (__START_KERNEL_map) and its largest KASLR span.</summary>
    public const ulong KernelMapStart = 0xFFFF_FFFF_8000_0000;
    public const ulong KernelMapEnd = 0xFFFF_FFFF_C000_0000;

    /// <summary>The lowest module-area start (MODULES_VADDR without KASLR) and MODULES_END.</summary>
    public const ulong ModuleAreaLowest = 0xFFFF_FFFF_A000_0000;
    public const ulong ModuleAreaEnd = 0xFFFF_FFFF_FF00_0000;

    private const ulong LargePage = 2UL << 20;
    private const ulong Cr0WriteProtect = 1UL << 16;
    private const ulong Cr4Umip = 1UL << 11;
    private const ulong Cr4Smep = 1UL << 20;
    private const ulong Cr4Smap = 1UL << 21;
    private const ulong EferNoExecute = 1UL << 11;

    private readonly GuestMemory _memory;
    private readonly Action<string>? _log;
    private readonly TimeProvider _clock;
    private readonly MeasurementLog? _measurementLog;
    private readonly long[] _violations = new long[Enum.GetValues<ProtectionViolationKind>().Length];
    private readonly object _measureGate = new();
    private KernelMeasurer? _measurer;
    private ITimer? _timer;
    private int _userEntriesBeforeLock;
    private string? _lockFailure;

    /// <param name="layout">The kernel's ranges (required when the policy protects the kernel).</param>
    /// <param name="log">Where lines go (the domain's rate-limited guest log).</param>
    public KernelProtector(ProtectionPolicy policy, KernelImageLayout? layout, GuestMemory memory, Action<string>? log, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(memory);
        if (policy.Kernel && layout is null)
        {
            throw new ArgumentException("kernel protection needs the kernel image's layout");
        }

        Policy = policy;
        Layout = layout;
        _memory = memory;
        _log = log;
        _clock = clock ?? TimeProvider.System;
        Map = new ProtectionMap(this, policy.Mode == ProtectionMode.Enforce);
        if (policy.MeasurementLogPath is { } path)
        {
            _measurementLog = new MeasurementLog(path);
        }
    }

    /// <summary>The policy in force; <see cref="Raise"/> can only make it stricter.</summary>
    public ProtectionPolicy Policy { get; private set; }

    public KernelImageLayout? Layout { get; }

    /// <summary>What the accelerator enforces; give it to the VM before its vCPUs exist.</summary>
    public ProtectionMap Map { get; }

    /// <summary>The KASLR offset of the kernel's virtual mapping found at lock (0 under nokaslr).</summary>
    public ulong? KaslrOffset { get; private set; }

    /// <summary>When the lock happened; null while unlocked.</summary>
    public DateTimeOffset? LockedAt { get; private set; }

    public Measurement? Golden { get; private set; }

    public Measurement? Latest { get; private set; }

    public long MeasurementMismatches { get; private set; }

    /// <summary>Raised for every violation (after counting), on the thread that caused it.</summary>
    public event Action<ProtectionViolation>? Violated;

    public long ViolationCount => _violations.Sum();

    public long Violations(ProtectionViolationKind kind) => Interlocked.Read(ref _violations[(int)kind]);

    public static string KindName(ProtectionViolationKind kind) => kind switch
    {
        ProtectionViolationKind.KernelWrite => "kernel-write",
        ProtectionViolationKind.KernelExecute => "kernel-exec",
        ProtectionViolationKind.ControlRegister => "cr-pin",
        ProtectionViolationKind.ModelSpecificRegister => "msr-pin",
        ProtectionViolationKind.DeviceWrite => "dma",
        ProtectionViolationKind.DescriptorTable => "gdt",
        _ => "measurement",
    };

    public void OnUserModeEntered(IProtectionLockContext context)
    {
        if (Map.IsLocked || _lockFailure is not null)
        {
            return;
        }

        try
        {
            TryLock(context);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or OverflowException or IOException)
        {
            // Guest-controlled state the lock could not use: never the vCPU thread's end. Said once; no more tries.
            _lockFailure = e.Message;
            _log?.Invoke($"protection: lock failed, the kernel stays unprotected: {e.Message}");
        }
    }

    /// <summary>Why locking failed (the kernel stays unprotected), or null.</summary>
    public string? LockFailure => _lockFailure;

    private void TryLock(IProtectionLockContext context)
    {
        _userEntriesBeforeLock++;
        var writeProtected = new List<ProtectedRange>();
        var executable = new List<ProtectedRange>();
        var text = new List<ProtectedRange>();
        var rodata = new List<ProtectedRange>();
        var idt = new List<ProtectedRange>();
        string where = "";
        if (Policy.Kernel)
        {
            KernelImageLayout layout = Layout!;
            if (FindKaslrOffset(context, layout) is not { } offset)
            {
                return; // the kernel mapping is not there (not Linux, or not yet): look again at the next entry
            }

            // Boot-time patching is over once the kernel maps its text and read-only data read-only.
            ProtectedRange firstRodata = layout.ReadOnlyData[0];
            if (!context.TryTranslate(layout.Text.Start + offset, out _, out bool textWritable) || textWritable
                || !context.TryTranslate(firstRodata.Start + offset, out _, out bool rodataWritable) || rodataWritable)
            {
                return;
            }

            AddFrames(context, layout.Text, offset, text, _memory);
            foreach (ProtectedRange r in layout.ReadOnlyData)
            {
                AddFrames(context, r, offset, rodata, _memory);
            }

            // The IDT (Linux points IDTR at a read-only alias of idt_table): its frames, exactly.
            ulong idtEnd = context.IdtBase + context.IdtLimit + 1UL;
            AddFrames(context, new ProtectedRange(context.IdtBase & ~0xFFFUL, (idtEnd + 0xFFF) & ~0xFFFUL), 0, idt, _memory);
            writeProtected.AddRange(text);
            writeProtected.AddRange(rodata);
            writeProtected.AddRange(idt);

            ulong imageEnd = layout.Sections.Where(s => s.IsAllocated && s.Address >= layout.Text.Start).Max(s => s.End) + offset;
            executable.Add(new ProtectedRange(layout.Text.Start + offset, layout.Text.End + offset));
            executable.Add(new ProtectedRange(Math.Max(ModuleAreaLowest, (imageEnd + LargePage - 1) & ~(LargePage - 1)), ModuleAreaEnd));
            KaslrOffset = offset;
            where = string.Create(
                CultureInfo.InvariantCulture,
                $" KASLR offset 0x{offset:x}; text 0x{layout.Text.Start + offset:x}-0x{layout.Text.End + offset:x} ({Sum(text) >> 10} KiB), read-only data {Sum(rodata) >> 10} KiB, IDT 0x{context.IdtBase:x} ({idt.Count} range{(idt.Count == 1 ? "" : "s")}), each vCPU's GDT but its TLS slots;");
        }

        RegisterPins pins = new()
        {
            Cr0Bits = Policy.PinControlRegisters ? context.Cr0 & Cr0WriteProtect : 0,
            Cr4Bits = Policy.PinControlRegisters ? context.Cr4 & (Cr4Smep | Cr4Smap | Cr4Umip) : 0,
            EferBits = Policy.PinMsrs ? context.Efer & EferNoExecute : 0,
            Lstar = Policy.PinMsrs ? context.Lstar : null,
            SysenterEip = Policy.PinMsrs ? context.SysenterEip : null,
        };
        // The GDT: each vCPU locks the one it uses when it sees the locked map (only the TLS slots stay writable).
        if (!Map.Lock(writeProtected, executable, pins, descriptorTables: Policy.Kernel))
        {
            return;
        }

        _measurer = new KernelMeasurer(_memory, text, rodata, idt, pins);
        LockedAt = _clock.GetUtcNow();
        Measurement golden = _measurer.Measure(LockedAt.Value);
        Golden = golden;
        Latest = golden;
        _measurementLog?.Append(golden, matchesGolden: true, "golden");
        _log?.Invoke($"protection locked ({Policy}) at vcpu {context.VcpuId}'s user-mode entry {_userEntriesBeforeLock}:{where} pins {KernelMeasurer.DescribePins(pins)}; golden sha256 {golden.Digest}");
        if (Policy.MeasureSeconds is { } seconds)
        {
            _timer = _clock.CreateTimer(_ => MeasurePeriodically(), null, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(seconds));
        }
    }

    public void OnViolation(in ProtectionViolation violation)
    {
        Interlocked.Increment(ref _violations[(int)violation.Kind]);
        string who = violation.Vcpu < 0 ? "device" : $"vcpu={violation.Vcpu} rip=0x{violation.Rip:x}";
        _log?.Invoke(string.Create(
            CultureInfo.InvariantCulture,
            $"protection violation: kind={KindName(violation.Kind)} {who} target=0x{violation.Target:x} value=0x{violation.Value:x} action={(violation.Blocked ? "blocked" : "logged")}"));
        Violated?.Invoke(violation);
    }

    /// <summary>
    /// Raises a running domain's policy (`sharpvisor protect DOMAIN POLICY`): what is protected may
    /// only grow. Log mode may become enforce and measurement more frequent at any time; kernel,
    /// cr-pin and msr-pin may be added only before the lock (the map locks once). Anything that
    /// would lower the protection is refused with an <see cref="ArgumentException"/>, and nothing changes.
    /// </summary>
    public void Raise(ProtectionPolicy raised)
    {
        ArgumentNullException.ThrowIfNull(raised);
        lock (_measureGate)
        {
            ProtectionPolicy current = Policy;
            var lowered = new List<string>();
            if (current.Kernel && !raised.Kernel)
            {
                lowered.Add("kernel");
            }

            if (current.PinControlRegisters && !raised.PinControlRegisters)
            {
                lowered.Add("cr-pin");
            }

            if (current.PinMsrs && !raised.PinMsrs)
            {
                lowered.Add("msr-pin");
            }

            if (current.Mode == ProtectionMode.Enforce && raised.Mode != ProtectionMode.Enforce)
            {
                lowered.Add("mode=enforce");
            }

            if (current.MeasureSeconds is { } every && (raised.MeasureSeconds is not { } next || next > every))
            {
                lowered.Add($"measure={every}");
            }

            if (lowered.Count > 0)
            {
                throw new ArgumentException($"lowering a running domain's protection is refused: {raised} drops or weakens {string.Join(", ", lowered)} of {current}");
            }

            bool adds = (raised.Kernel && !current.Kernel) || (raised.PinControlRegisters && !current.PinControlRegisters) || (raised.PinMsrs && !current.PinMsrs);
            if (adds && Map.IsLocked)
            {
                throw new ArgumentException($"the kernel is locked already: kernel, cr-pin and msr-pin can be added only before the lock ({current} is in force)");
            }

            if (raised.Kernel && Layout is null)
            {
                throw new ArgumentException("kernel protection needs the kernel image's layout, read at boot: configure it before the domain starts");
            }

            if (raised.Mode == ProtectionMode.Enforce)
            {
                Map.EnforceFromNow();
            }

            if (raised.MeasureSeconds is { } seconds && seconds != current.MeasureSeconds && Golden is not null)
            {
                _timer?.Dispose();
                _timer = _clock.CreateTimer(_ => MeasurePeriodically(), null, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(seconds));
            }

            Policy = raised with { MeasurementLogPath = current.MeasurementLogPath };
            _log?.Invoke($"protection policy raised: {current} -> {Policy}");
        }
    }

    /// <summary>Measures now and compares with the golden measurement; null before the lock.</summary>
    public Measurement? MeasureNow(string reason = "demand")
    {
        lock (_measureGate)
        {
            if (_measurer is null || Golden is null)
            {
                return null;
            }

            Measurement m = _measurer.Measure(_clock.GetUtcNow());
            bool matches = m.Digest == Golden.Digest;
            Latest = m;
            _measurementLog?.Append(m, matches, reason);
            if (!matches)
            {
                MeasurementMismatches++;
                OnViolation(new ProtectionViolation(ProtectionViolationKind.Measurement, -1, 0, 0, 0, Blocked: false));
            }

            return m;
        }
    }

    /// <summary>
    /// A quote for <paramref name="nonceHex"/> (the verifier's challenge): measures now, then signs
    /// the kernel digest, the policy, golden and current measurements and the violation count.
    /// </summary>
    public AttestationQuote Quote(string nonceHex, AttestationKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!IsValidNonce(nonceHex))
        {
            throw new ArgumentException("the nonce is 1 to 64 bytes in hex");
        }

        Measurement? current = MeasureNow("quote");
        var payload = new QuotePayload
        {
            KernelDigest = Layout?.KernelDigest ?? "",
            Policy = Policy.ToString(),
            Locked = LockedAt is not null,
            GoldenMeasurement = Golden?.Digest,
            CurrentMeasurement = current?.Digest,
            Violations = ViolationCount,
            Nonce = nonceHex.ToLowerInvariant(),
            Timestamp = _clock.GetUtcNow(),
            KeyId = key.KeyId,
        };
        return AttestationQuote.Create(payload, key);
    }

    /// <summary>A nonce is 1 to 64 bytes, in hex.</summary>
    public static bool IsValidNonce(string nonceHex) =>
        nonceHex.Length is > 0 and <= 128 && nonceHex.Length % 2 == 0 && nonceHex.All(Uri.IsHexDigit);

    public void Dispose()
    {
        _timer?.Dispose();
        lock (_measureGate)
        {
            _measurer = null; // a timer callback still in flight measures nothing once guest memory may go
            _measurementLog?.Dispose();
        }
    }

    private void MeasurePeriodically()
    {
        try
        {
            MeasureNow("periodic");
        }
        catch (Exception e) when (e is ObjectDisposedException or IOException)
        {
            // The domain is going away.
        }
    }

    /// <summary>
    /// The kernel mapping's KASLR offset: after boot Linux's cleanup_highmap() leaves only
    /// [_text, _end) mapped in __START_KERNEL_map, so the first mapped 2 MiB step is _text's.
    /// </summary>
    private static ulong? FindKaslrOffset(IProtectionLockContext context, KernelImageLayout layout)
    {
        ulong linkBase = layout.Text.Start & ~(LargePage - 1);
        for (ulong at = KernelMapStart; at < KernelMapEnd; at += LargePage)
        {
            if (context.TryTranslate(at, out _, out _))
            {
                return at >= linkBase ? at - linkBase : null;
            }
        }

        return null;
    }

    /// <summary>
    /// The guest RAM frames behind a linear range (at <paramref name="offset"/>), merged; pages not
    /// mapped, or mapped to something that is not RAM (the guest's choice), are skipped.
    /// </summary>
    private static void AddFrames(IProtectionLockContext context, ProtectedRange linear, ulong offset, List<ProtectedRange> frames, GuestMemory memory)
    {
        for (ulong page = linear.Start; page < linear.End && page >= linear.Start; page += 4096)
        {
            if (!context.TryTranslate(page + offset, out ulong physical, out _))
            {
                continue;
            }

            physical &= ~0xFFFUL;
            if (!memory.IsValid(physical, 4096))
            {
                continue;
            }

            if (frames.Count > 0 && frames[^1].End == physical)
            {
                frames[^1] = frames[^1] with { End = physical + 4096 };
            }
            else
            {
                frames.Add(new ProtectedRange(physical, physical + 4096));
            }
        }
    }

    private static ulong Sum(List<ProtectedRange> ranges) => (ulong)ranges.Sum(r => (long)r.Length);
}
