using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// One vCPU's local APIC, as KVM's in-kernel LAPIC provides it: the xAPIC register page (the vCPU
/// routes its own accesses to <see cref="MmioBase"/> here, see <see cref="IsMmioAddress"/>), the
/// x2APIC MSRs 0x800-0x8FF, IA32_APIC_BASE and IA32_TSC_DEADLINE, interrupt acceptance and
/// prioritisation (IRR/ISR/TMR, TPR/PPR), EOI, IPIs through the <see cref="ApicBus"/>, the timer in
/// one-shot, periodic and TSC-deadline modes, and INIT/SIPI for bringing up application processors.
/// Thread-safe: other vCPUs, the I/O APIC and device threads deliver interrupts concurrently with
/// the owning vCPU. Calls out of this class (IPIs, EOI broadcasts) happen after its lock is released.
/// </summary>
public sealed class LocalApic : IMmioDevice
{
    public const ulong DefaultBaseAddress = 0xFEE0_0000;
    public const ulong PageSize = 0x1000;

    public const uint MsrApicBase = 0x1B;
    public const uint MsrTscDeadline = 0x6E0;
    public const uint MsrX2ApicFirst = 0x800;
    public const uint MsrX2ApicLast = 0x8FF;

    /// <summary>IA32_APIC_BASE bit 8: this is the bootstrap processor.</summary>
    public const ulong ApicBaseBsp = 1UL << 8;

    /// <summary>IA32_APIC_BASE bit 10: x2APIC mode.</summary>
    public const ulong ApicBaseX2ApicEnable = 1UL << 10;

    /// <summary>IA32_APIC_BASE bit 11: the APIC is (hardware-)enabled.</summary>
    public const ulong ApicBaseEnable = 1UL << 11;

    /// <summary>Version register: integrated APIC (0x14), six LVT entries (max LVT index 5).</summary>
    public const uint VersionValue = 0x0005_0014;

    public const uint LvtMasked = 1u << 16;

    // ESR bits.
    public const uint ErrorSendIllegalVector = 1u << 5;
    public const uint ErrorReceiveIllegalVector = 1u << 6;
    public const uint ErrorIllegalRegisterAddress = 1u << 7;

    /// <summary>Shortest periodic timer period accepted (KVM's min_timer_period_us): a guest cannot make an interrupt storm.</summary>
    public const long MinimumPeriodNanoseconds = 200_000;

    private const long Never = long.MaxValue;
    private const string LogSource = "lapic";

    // LVT indexes into _lvt, in register order from 0x320.
    private const int LvtTimer = 0;
    private const int LvtThermal = 1;
    private const int LvtPerformance = 2;
    private const int LvtLint0 = 3;
    private const int LvtLint1 = 4;
    private const int LvtError = 5;
    private const int LvtCount = 6;

    private const uint VectorMask = 0xFF;
    private const uint DeliveryModeMask = 0x700;
    private const uint LvtBaseMask = LvtMasked | VectorMask;
    private const uint LintMask = LvtBaseMask | DeliveryModeMask | (1u << 13) | (1u << 15);
    private const uint TimerModeMask = 3u << 17;
    private const uint TimerModePeriodic = 1u << 17;
    private const uint TimerModeTscDeadline = 2u << 17;
    private const uint SvrMask = 0x3FF;
    private const uint SvrSoftwareEnable = 1u << 8;

    private static readonly uint[] s_lvtWriteMasks =
    {
        LvtBaseMask | TimerModeMask,
        LvtBaseMask | DeliveryModeMask,
        LvtBaseMask | DeliveryModeMask,
        LintMask,
        LintMask,
        LvtBaseMask,
    };

    private readonly object _lock = new();
    private readonly ApicBus _bus;
    private readonly PlatformTimeBase _time;
    private readonly PlatformLog _log;
    private readonly ulong _baseAddressMask;
    private readonly bool _x2ApicSupported;
    private readonly ManualResetEventSlim _wakeup = new(false);

    private readonly ApicVectorSet _irr = new();
    private readonly ApicVectorSet _isr = new();
    private readonly ApicVectorSet _tmr = new();
    private readonly uint[] _lvt = new uint[LvtCount];
    private readonly bool[] _lintLevel = new bool[2];

    private ulong _apicBase;
    private uint _id;
    private uint _tpr;
    private uint _ldr;
    private uint _dfr;
    private uint _svr;
    private uint _esr;
    private uint _esrPending;
    private uint _icrLow;
    private uint _icrHigh;
    private uint _timerInitialCount;
    private uint _timerDivideConfiguration;
    private long _timerPeriodNs;
    private long _timerDeadlineNs = Never;
    private ulong _tscDeadline;
    private bool _nmiPending;
    private bool _initPending;
    private int _sipiVector = -1;
    private bool _waitingForSipi;

    // Lock-free snapshots for the vCPU's hot path.
    private volatile bool _eventsHint;
    private volatile bool _acceptsPicInterrupts;
    private volatile bool _mmioEnabled;

    /// <param name="vcpuId">The vCPU index; also the initial APIC ID (and the x2APIC ID).</param>
    /// <param name="bus">The APIC bus joining every local APIC and the I/O APIC.</param>
    /// <param name="time">The machine's time base (timer, TSC deadline).</param>
    /// <param name="log">Where guest misbehaviour is reported.</param>
    /// <param name="isBootProcessor">Whether this is the BSP (vCPU 0); APs start waiting for a SIPI.</param>
    /// <param name="x2ApicSupported">Whether CPUID advertises x2APIC (bit 10 of IA32_APIC_BASE is otherwise reserved).</param>
    /// <param name="physicalAddressBits">MAXPHYADDR: base-address bits above it are reserved.</param>
    public LocalApic(int vcpuId, ApicBus bus, PlatformTimeBase time, PlatformLog? log = null, bool? isBootProcessor = null, bool x2ApicSupported = true, int physicalAddressBits = 46)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(vcpuId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vcpuId, 254);
        ArgumentOutOfRangeException.ThrowIfLessThan(physicalAddressBits, 32);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(physicalAddressBits, 52);
        VcpuId = vcpuId;
        _bus = bus;
        _time = time;
        _log = log ?? PlatformLog.Null;
        _x2ApicSupported = x2ApicSupported;
        _baseAddressMask = ((1UL << physicalAddressBits) - 1) & ~(PageSize - 1);
        IsBootProcessor = isBootProcessor ?? vcpuId == 0;
        lock (_lock)
        {
            _apicBase = DefaultBaseAddress | ApicBaseEnable | (IsBootProcessor ? ApicBaseBsp : 0);
            _id = (uint)vcpuId;
            ResetRegisters(powerOn: true);
            _waitingForSipi = !IsBootProcessor;
            UpdateSnapshots();
        }

        bus.Attach(this);
    }

    public int VcpuId { get; }

    public bool IsBootProcessor { get; }

    /// <summary>The APIC ID (8-bit in xAPIC mode, the vCPU index in x2APIC mode).</summary>
    public uint Id
    {
        get
        {
            lock (_lock)
            {
                return _id;
            }
        }
    }

    /// <summary>IA32_APIC_BASE as the guest reads it.</summary>
    public ulong ApicBase
    {
        get
        {
            lock (_lock)
            {
                return _apicBase;
            }
        }
    }

    /// <summary>Physical address of the xAPIC register page.</summary>
    public ulong MmioBase
    {
        get
        {
            lock (_lock)
            {
                return _apicBase & _baseAddressMask;
            }
        }
    }

    public bool IsHardwareEnabled
    {
        get
        {
            lock (_lock)
            {
                return (_apicBase & ApicBaseEnable) != 0;
            }
        }
    }

    public bool IsX2ApicMode
    {
        get
        {
            lock (_lock)
            {
                return IsX2ApicModeLocked;
            }
        }
    }

    /// <summary>SVR bit 8.</summary>
    public bool IsSoftwareEnabled
    {
        get
        {
            lock (_lock)
            {
                return (_svr & SvrSoftwareEnable) != 0;
            }
        }
    }

    /// <summary>
    /// The task-priority register in any mode: what CR8 reads and writes (CR8 = TPR bits 7:4),
    /// which must work whether the guest uses the xAPIC page, x2APIC MSRs or neither.
    /// </summary>
    public uint TaskPriority
    {
        get
        {
            lock (_lock)
            {
                return _tpr;
            }
        }

        set
        {
            lock (_lock)
            {
                _tpr = value & 0xFF;
            }
        }
    }

    /// <summary>
    /// Cheap hint for the vCPU's hot path: something may need attention (an IRR bit, NMI, INIT,
    /// SIPI or the 8259's output through LINT0). The timer is not included: compare the clock
    /// with <see cref="NextTimerDeadline"/>.
    /// </summary>
    public bool HasPendingEvents =>
        _eventsHint || (_acceptsPicInterrupts && _bus.ExternalInterrupts is { OutputAsserted: true });

    /// <summary>
    /// Virtual nanosecond at which the timer next fires (<see cref="long.MaxValue"/> if it is
    /// stopped): a halted vCPU sleeps at most until then and then calls <see cref="UpdateTimer"/>.
    /// </summary>
    public long NextTimerDeadline => Volatile.Read(ref _timerDeadlineNs);

    /// <summary>
    /// Whether the 8259's output reaches this CPU: the APIC is hardware-disabled (the INTR pin is
    /// wired straight to the PIC) or LINT0 is unmasked in ExtINT mode (virtual-wire mode).
    /// </summary>
    public bool AcceptsPicInterrupts => _acceptsPicInterrupts;

    public bool PendingNmi
    {
        get
        {
            lock (_lock)
            {
                return _nmiPending;
            }
        }
    }

    public bool PendingInit
    {
        get
        {
            lock (_lock)
            {
                return _initPending;
            }
        }
    }

    /// <summary>The SIPI vector latched while waiting for a SIPI, if any.</summary>
    public int? PendingSipiVector
    {
        get
        {
            lock (_lock)
            {
                return _sipiVector >= 0 ? _sipiVector : null;
            }
        }
    }

    /// <summary>The CPU sits in wait-for-SIPI (APs from power-on, and after INIT): it must not run.</summary>
    public bool IsWaitingForSipi
    {
        get
        {
            lock (_lock)
            {
                return _waitingForSipi;
            }
        }
    }

    private bool IsX2ApicModeLocked => (_apicBase & ApicBaseX2ApicEnable) != 0;

    private bool IsHardwareEnabledLocked => (_apicBase & ApicBaseEnable) != 0;

    private bool IsSoftwareEnabledLocked => (_svr & SvrSoftwareEnable) != 0;

    private uint TimerMode => _lvt[LvtTimer] & TimerModeMask;

    private bool IsTscDeadlineMode => TimerMode == TimerModeTscDeadline;

    /// <summary>The divide configuration register as a divisor: 1, 2, 4, ... 128.</summary>
    private long TimerDivisor
    {
        get
        {
            uint value = (_timerDivideConfiguration & 3) | ((_timerDivideConfiguration & 8) >> 1);
            return 1L << (int)((value + 1) & 7);
        }
    }

    /// <summary>Whether the vCPU should route a physical access at <paramref name="address"/> to this APIC.</summary>
    public bool IsMmioAddress(ulong address)
    {
        if (!_mmioEnabled)
        {
            return false;
        }

        ulong start = MmioBase;
        return address >= start && address - start < PageSize;
    }

    /// <summary>Whether <paramref name="msr"/> belongs to the local APIC (then use <see cref="ReadMsr"/>/<see cref="WriteMsr"/>).</summary>
    public static bool HandlesMsr(uint msr) =>
        msr == MsrApicBase || msr == MsrTscDeadline || (msr >= MsrX2ApicFirst && msr <= MsrX2ApicLast);

    // ---------------------------------------------------------------- interrupt acceptance

    /// <summary>
    /// A fixed (or lowest-priority, once arbitrated) interrupt arrives: sets IRR, and TMR for a
    /// level-triggered one (so its EOI is broadcast to the I/O APIC). Returns false when dropped.
    /// </summary>
    public bool AcceptInterrupt(int vector, bool levelTriggered)
    {
        bool accepted;
        lock (_lock)
        {
            accepted = AcceptInterruptLocked(vector, levelTriggered);
            UpdateSnapshots();
        }

        if (accepted)
        {
            Wake();
        }

        return accepted;
    }

    /// <summary>Handles one APIC-bus message addressed to this APIC (the bus has matched the destination).</summary>
    public void Receive(in ApicMessage message)
    {
        bool wake = true;
        lock (_lock)
        {
            if (!IsHardwareEnabledLocked)
            {
                return;
            }

            switch (message.DeliveryMode)
            {
                case ApicDeliveryMode.Fixed:
                case ApicDeliveryMode.LowestPriority:
                    wake = AcceptInterruptLocked(message.Vector, message.LevelTriggered);
                    break;
                case ApicDeliveryMode.Nmi:
                    _nmiPending = true;
                    break;
                case ApicDeliveryMode.Init:
                    // An INIT level de-assert only resynchronises arbitration IDs.
                    if (!message.LevelTriggered || message.Assert)
                    {
                        _initPending = true;
                    }
                    else
                    {
                        wake = false;
                    }

                    break;
                case ApicDeliveryMode.StartUp:
                    // SIPIs reach only a CPU in wait-for-SIPI (or one about to enter it); Linux sends two.
                    if (_waitingForSipi || _initPending)
                    {
                        _sipiVector = message.Vector & 0xFF;
                    }
                    else
                    {
                        wake = false;
                    }

                    break;
                case ApicDeliveryMode.ExtInt:
                    // The vector comes from the 8259 through LINT0 (AcceptsPicInterrupts); as in KVM, nothing to latch.
                    break;
                default:
                    _log.Warn(LogSource, $"cpu {VcpuId}: ignoring {message.DeliveryMode} message");
                    wake = false;
                    break;
            }

            UpdateSnapshots();
        }

        if (wake)
        {
            Wake();
        }
    }

    /// <summary>
    /// The highest-priority maskable interrupt the CPU could take now (when RFLAGS.IF allows):
    /// the 8259's vector through LINT0/ExtINT first (as KVM does), then the highest IRR vector whose
    /// priority class is above the PPR. Does not acknowledge; see <see cref="TryTakeInterrupt"/>.
    /// </summary>
    public bool TryGetPendingInterrupt(out int vector)
    {
        UpdateTimer();
        IExternalInterruptSource? pic = _bus.ExternalInterrupts;
        if (_acceptsPicInterrupts && pic is { OutputAsserted: true } && pic.PeekVector() is int picVector)
        {
            vector = picVector;
            return true;
        }

        lock (_lock)
        {
            vector = HighestDeliverableLocked();
            return vector >= 0;
        }
    }

    /// <summary>
    /// The CPU takes the interrupt reported by <see cref="TryGetPendingInterrupt"/>: the INTA cycle
    /// (8259) or IRR→ISR. Returns the vector actually delivered: the spurious vector (SVR) when the
    /// request went away in between, as on hardware.
    /// </summary>
    public int AcknowledgeInterrupt(int vector)
    {
        IExternalInterruptSource? pic = _bus.ExternalInterrupts;
        if (_acceptsPicInterrupts && pic is { OutputAsserted: true } && pic.AcknowledgeInterrupt() is int picVector)
        {
            return picVector;
        }

        lock (_lock)
        {
            int delivered = HighestDeliverableLocked() == vector && vector >= 0 ? vector : -1;
            if (delivered < 0)
            {
                return (int)(_svr & VectorMask);
            }

            _irr.Clear(delivered);
            _isr.Set(delivered);
            UpdateSnapshots();
            return delivered;
        }
    }

    /// <summary>Atomically finds and acknowledges the interrupt to deliver: what the vCPU loop calls when IF=1.</summary>
    public bool TryTakeInterrupt(out int vector)
    {
        UpdateTimer();
        IExternalInterruptSource? pic = _bus.ExternalInterrupts;
        if (_acceptsPicInterrupts && pic is { OutputAsserted: true } && pic.AcknowledgeInterrupt() is int picVector)
        {
            vector = picVector;
            return true;
        }

        lock (_lock)
        {
            vector = HighestDeliverableLocked();
            if (vector < 0)
            {
                return false;
            }

            _irr.Clear(vector);
            _isr.Set(vector);
            UpdateSnapshots();
            return true;
        }
    }

    /// <summary>
    /// Takes the next event the CPU should act on, in architectural order: INIT, then SIPI (only
    /// in wait-for-SIPI), then NMI (if <paramref name="nmiAllowed"/>: not blocked by an NMI in
    /// progress), then a maskable interrupt (if <paramref name="interruptsAllowed"/>: RFLAGS.IF set
    /// and no interrupt shadow). False when there is nothing the CPU can take now.
    /// </summary>
    public bool TryTakeEvent(bool nmiAllowed, bool interruptsAllowed, out ApicEvent apicEvent)
    {
        if (TryTakeInit())
        {
            apicEvent = new ApicEvent(ApicEventKind.Init, 0);
            return true;
        }

        if (TryTakeSipi(out int sipiVector))
        {
            apicEvent = new ApicEvent(ApicEventKind.StartUp, sipiVector);
            return true;
        }

        if (IsWaitingForSipi)
        {
            apicEvent = default;
            return false;
        }

        if (nmiAllowed && TryTakeNmi())
        {
            apicEvent = new ApicEvent(ApicEventKind.Nmi, 2);
            return true;
        }

        if (interruptsAllowed && TryTakeInterrupt(out int vector))
        {
            apicEvent = new ApicEvent(ApicEventKind.Interrupt, vector);
            return true;
        }

        apicEvent = default;
        return false;
    }

    /// <summary>Takes a pending NMI (the CPU handles NMI blocking itself).</summary>
    public bool TryTakeNmi()
    {
        lock (_lock)
        {
            bool pending = _nmiPending;
            _nmiPending = false;
            UpdateSnapshots();
            return pending;
        }
    }

    /// <summary>
    /// Takes a pending INIT: resets the APIC's registers (keeping its ID and base) and, for an AP,
    /// enters wait-for-SIPI. The caller then puts the CPU in its INIT state; a BSP restarts at the
    /// reset vector. Process INIT before SIPI.
    /// </summary>
    public bool TryTakeInit()
    {
        lock (_lock)
        {
            if (!_initPending)
            {
                return false;
            }

            _initPending = false;
            ResetRegisters(powerOn: false);
            _waitingForSipi = !IsBootProcessor;
            UpdateSnapshots();
            return true;
        }
    }

    /// <summary>
    /// As after an INIT, without one: registers reset (ID and base kept), nothing pending, and
    /// wait-for-SIPI (the VMM's ACPI S3 resume parks the application processors so).
    /// </summary>
    public void EnterWaitForSipi()
    {
        lock (_lock)
        {
            _initPending = false;
            _nmiPending = false;
            _sipiVector = -1;
            ResetRegisters(powerOn: false);
            _waitingForSipi = true;
            UpdateSnapshots();
        }
    }

    /// <summary>Leaves wait-for-SIPI without a SIPI: a paravirtual start (Xen PV's VCPUOP_up) loads the CPU's state itself.</summary>
    public void LeaveWaitForSipi()
    {
        lock (_lock)
        {
            _sipiVector = -1;
            _waitingForSipi = false;
            UpdateSnapshots();
        }
    }

    /// <summary>
    /// Takes a SIPI received in wait-for-SIPI: the CPU leaves that state and starts in real mode at
    /// CS = vector &lt;&lt; 8, IP = 0 (physical address vector * 0x1000).
    /// </summary>
    public bool TryTakeSipi(out int vector)
    {
        lock (_lock)
        {
            vector = _sipiVector;
            if (_initPending || !_waitingForSipi || vector < 0)
            {
                vector = 0;
                return false;
            }

            _sipiVector = -1;
            _waitingForSipi = false;
            UpdateSnapshots();
            return true;
        }
    }

    /// <summary>The LINT0 pin (wired to the 8259's INT output).</summary>
    public void SetLint0(bool level) => SetLint(LvtLint0, level);

    /// <summary>The LINT1 pin (NMI in virtual-wire mode).</summary>
    public void SetLint1(bool level) => SetLint(LvtLint1, level);

    /// <summary>
    /// Called on every <see cref="Wake"/>, from any thread: the vCPU ends its running slice at the
    /// next block boundary, so an interrupt that arrives while it runs (a device completion) is
    /// taken within a block rather than at the end of a 20,000-instruction slice.
    /// </summary>
    public Action? Woken { get; set; }

    /// <summary>Wakes the vCPU thread from <see cref="WaitForWakeup"/> (also for the vCPU's own kick), and stops its slice.</summary>
    public void Wake()
    {
        _wakeup.Set();
        Woken?.Invoke();
    }

    /// <summary>
    /// Sleeps the halted vCPU until <see cref="Wake"/> or the timeout (rounded up to a millisecond).
    /// The caller re-checks its wake conditions after every return; a wake that arrives between
    /// that check and the next wait is not lost.
    /// </summary>
    public bool WaitForWakeup(TimeSpan timeout)
    {
        int milliseconds;
        if (timeout < TimeSpan.Zero || timeout.TotalMilliseconds >= int.MaxValue)
        {
            milliseconds = Timeout.Infinite;
        }
        else
        {
            milliseconds = (int)Math.Ceiling(timeout.TotalMilliseconds);
        }

        bool woken = _wakeup.Wait(milliseconds);
        _wakeup.Reset();
        return woken;
    }

    /// <summary>Sleeps until <see cref="Wake"/> or the virtual-time deadline (<see cref="long.MaxValue"/>: no deadline).</summary>
    public bool WaitForWakeupUntil(long deadlineNanoseconds)
    {
        if (deadlineNanoseconds == long.MaxValue)
        {
            return WaitForWakeup(Timeout.InfiniteTimeSpan);
        }

        long remaining = deadlineNanoseconds - _time.NowNanoseconds;
        if (remaining <= 0)
        {
            bool woken = _wakeup.IsSet;
            _wakeup.Reset();
            return woken;
        }

        return WaitForWakeup(TimeSpan.FromTicks(Math.Max(1, remaining / 100)));
    }

    /// <summary>Fires the timer if its deadline has passed. Cheap when it has not.</summary>
    public void UpdateTimer()
    {
        if (Volatile.Read(ref _timerDeadlineNs) == Never)
        {
            return;
        }

        long now = _time.NowNanoseconds;
        if (now < Volatile.Read(ref _timerDeadlineNs))
        {
            return;
        }

        bool fired;
        lock (_lock)
        {
            fired = UpdateTimerLocked(now);
            UpdateSnapshots();
        }

        if (fired)
        {
            Wake();
        }
    }

    // ---------------------------------------------------------------- xAPIC MMIO

    public void Read(ulong offset, Span<byte> data)
    {
        uint value;
        int alignment = (int)(offset & 0xF);
        lock (_lock)
        {
            if (!IsHardwareEnabledLocked || IsX2ApicModeLocked)
            {
                data.Fill(0xFF);
                return;
            }

            if (offset >= PageSize || data.Length > 4 || alignment + data.Length > 4)
            {
                _log.Warn(LogSource, $"cpu {VcpuId}: bad register read at 0x{offset:x} size {data.Length}");
                data.Clear();
                return;
            }

            if (!TryReadRegisterLocked((uint)offset & ~0xFu, out value))
            {
                value = 0;
            }
        }

        value >>= alignment * 8;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(value >> (8 * i));
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= PageSize || data.Length != 4 || (offset & 0xF) != 0)
        {
            _log.Warn(LogSource, $"cpu {VcpuId}: bad register write at 0x{offset:x} size {data.Length}");
            return;
        }

        uint value = (uint)(data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24));
        var output = new PendingOutput();
        lock (_lock)
        {
            if (!IsHardwareEnabledLocked || IsX2ApicModeLocked)
            {
                return;
            }

            WriteRegisterLocked((uint)offset, value, ref output);
            UpdateSnapshots();
        }

        Flush(output);
    }

    // ---------------------------------------------------------------- MSRs

    /// <summary>RDMSR of an APIC MSR. False means #GP.</summary>
    public bool ReadMsr(uint msr, out ulong value)
    {
        value = 0;
        if (msr == MsrApicBase)
        {
            value = ApicBase;
            return true;
        }

        if (msr == MsrTscDeadline)
        {
            lock (_lock)
            {
                value = IsHardwareEnabledLocked && IsTscDeadlineMode ? _tscDeadline : 0;
            }

            return true;
        }

        if (msr < MsrX2ApicFirst || msr > MsrX2ApicLast)
        {
            return false;
        }

        uint register = (msr - MsrX2ApicFirst) << 4;
        lock (_lock)
        {
            if (!IsX2ApicModeLocked || !IsX2ApicReadable(register))
            {
                return false;
            }

            if (register == ApicRegister.InterruptCommandLow)
            {
                value = ((ulong)_icrHigh << 32) | _icrLow;
                return true;
            }

            if (!TryReadRegisterLocked(register, out uint value32))
            {
                return false;
            }

            value = value32;
            return true;
        }
    }

    /// <summary>WRMSR of an APIC MSR. False means #GP.</summary>
    public bool WriteMsr(uint msr, ulong value)
    {
        if (msr == MsrApicBase)
        {
            return WriteApicBase(value);
        }

        if (msr == MsrTscDeadline)
        {
            WriteTscDeadline(value);
            return true;
        }

        if (msr < MsrX2ApicFirst || msr > MsrX2ApicLast)
        {
            return false;
        }

        uint register = (msr - MsrX2ApicFirst) << 4;
        var output = new PendingOutput();
        lock (_lock)
        {
            if (!IsX2ApicModeLocked || !IsX2ApicWritable(register))
            {
                return false;
            }

            if (register == ApicRegister.InterruptCommandLow)
            {
                // One 64-bit ICR: the destination is the upper half, a full 32-bit x2APIC ID.
                _icrHigh = (uint)(value >> 32);
                _icrLow = (uint)value & ~(1u << 12);
                output.Ipi = BuildIpiLocked(_icrLow, _icrHigh);
            }
            else
            {
                if ((value >> 32) != 0)
                {
                    return false;
                }

                uint value32 = (uint)value;
                switch (register)
                {
                    case ApicRegister.EndOfInterrupt:
                    case ApicRegister.ErrorStatus:
                        if (value32 != 0)
                        {
                            return false;
                        }

                        break;
                    case ApicRegister.SelfIpi:
                        if ((value32 & ~VectorMask) != 0)
                        {
                            return false;
                        }

                        break;
                }

                WriteRegisterLocked(register, value32, ref output);
            }

            UpdateSnapshots();
        }

        Flush(output);
        return true;
    }

    private bool WriteApicBase(ulong value)
    {
        ulong reserved = ~(_baseAddressMask | ApicBaseEnable | ApicBaseX2ApicEnable | ApicBaseBsp);
        if (!_x2ApicSupported)
        {
            reserved |= ApicBaseX2ApicEnable;
        }

        bool newEnabled = (value & ApicBaseEnable) != 0;
        bool newX2 = (value & ApicBaseX2ApicEnable) != 0;
        if ((value & reserved) != 0 || (newX2 && !newEnabled))
        {
            return false;
        }

        lock (_lock)
        {
            bool oldEnabled = IsHardwareEnabledLocked;
            bool oldX2 = IsX2ApicModeLocked;

            // x2APIC can be left only through the disabled state, and entered only from xAPIC.
            if (oldX2 && newEnabled && !newX2)
            {
                return false;
            }

            if (!oldEnabled && newX2)
            {
                return false;
            }

            _apicBase = (value & (_baseAddressMask | ApicBaseEnable | ApicBaseX2ApicEnable)) | (IsBootProcessor ? ApicBaseBsp : 0);
            if (newX2 && !oldX2)
            {
                // x2APIC: the ID is the vCPU's, the logical ID is derived from it (cluster, bit).
                _id = (uint)VcpuId;
                _ldr = ((_id >> 4) << 16) | (1u << (int)(_id & 0xF));
            }
            else if (!newX2 && oldX2)
            {
                _id = (uint)VcpuId;
                _ldr = 0;
            }

            UpdateSnapshots();
        }

        return true;
    }

    private void WriteTscDeadline(ulong value)
    {
        lock (_lock)
        {
            if (!IsHardwareEnabledLocked || !IsTscDeadlineMode)
            {
                return;
            }

            _tscDeadline = value;
            SetTimerDeadline(value == 0 ? Never : _time.TscToNanoseconds(value));
        }

        // A deadline already in the past fires at once.
        UpdateTimer();
    }

    // ---------------------------------------------------------------- registers

    private static bool IsX2ApicReadable(uint register) => register switch
    {
        ApicRegister.Id or ApicRegister.Version or ApicRegister.TaskPriority or ApicRegister.ProcessorPriority
            or ApicRegister.LogicalDestination or ApicRegister.SpuriousVector or ApicRegister.ErrorStatus
            or ApicRegister.InterruptCommandLow or ApicRegister.TimerInitialCount or ApicRegister.TimerCurrentCount
            or ApicRegister.TimerDivideConfiguration => true,
        >= ApicRegister.InService and < ApicRegister.ErrorStatus => true,
        >= ApicRegister.LvtTimer and <= ApicRegister.LvtError => true,
        _ => false,
    };

    private static bool IsX2ApicWritable(uint register) => register switch
    {
        ApicRegister.TaskPriority or ApicRegister.EndOfInterrupt or ApicRegister.SpuriousVector or ApicRegister.ErrorStatus
            or ApicRegister.InterruptCommandLow or ApicRegister.TimerInitialCount or ApicRegister.TimerDivideConfiguration
            or ApicRegister.SelfIpi => true,
        >= ApicRegister.LvtTimer and <= ApicRegister.LvtError => true,
        _ => false,
    };

    private bool TryReadRegisterLocked(uint register, out uint value)
    {
        bool x2 = IsX2ApicModeLocked;
        switch (register)
        {
            case ApicRegister.Id:
                value = x2 ? _id : _id << 24;
                return true;
            case ApicRegister.Version:
                value = VersionValue;
                return true;
            case ApicRegister.TaskPriority:
                value = _tpr;
                return true;
            case ApicRegister.ArbitrationPriority:
            case ApicRegister.EndOfInterrupt:
            case ApicRegister.RemoteRead:
                value = 0;
                return !x2;
            case ApicRegister.ProcessorPriority:
                value = ProcessorPriorityLocked();
                return true;
            case ApicRegister.LogicalDestination:
                value = _ldr;
                return true;
            case ApicRegister.DestinationFormat:
                value = _dfr;
                return !x2;
            case ApicRegister.SpuriousVector:
                value = _svr;
                return true;
            case >= ApicRegister.InService and < ApicRegister.TriggerMode:
                value = _isr.ReadRegister((int)(register - ApicRegister.InService) >> 4);
                return true;
            case >= ApicRegister.TriggerMode and < ApicRegister.InterruptRequest:
                value = _tmr.ReadRegister((int)(register - ApicRegister.TriggerMode) >> 4);
                return true;
            case >= ApicRegister.InterruptRequest and < ApicRegister.ErrorStatus:
                value = _irr.ReadRegister((int)(register - ApicRegister.InterruptRequest) >> 4);
                return true;
            case ApicRegister.ErrorStatus:
                value = _esr;
                return true;
            case ApicRegister.InterruptCommandLow:
                value = _icrLow;
                return true;
            case ApicRegister.InterruptCommandHigh:
                value = _icrHigh;
                return !x2;
            case >= ApicRegister.LvtTimer and <= ApicRegister.LvtError:
                value = _lvt[(register - ApicRegister.LvtTimer) >> 4];
                return true;
            case ApicRegister.TimerInitialCount:
                value = _timerInitialCount;
                return true;
            case ApicRegister.TimerCurrentCount:
                value = TimerCurrentCountLocked(_time.NowNanoseconds);
                return true;
            case ApicRegister.TimerDivideConfiguration:
                value = _timerDivideConfiguration;
                return true;
            default:
                value = 0;
                return false;
        }
    }

    private void WriteRegisterLocked(uint register, uint value, ref PendingOutput output)
    {
        bool x2 = IsX2ApicModeLocked;
        switch (register)
        {
            case ApicRegister.Id:
                if (!x2)
                {
                    _id = value >> 24;
                }

                break;
            case ApicRegister.TaskPriority:
                _tpr = value & 0xFF;
                break;
            case ApicRegister.EndOfInterrupt:
                output.EoiVector = EndOfInterruptLocked();
                break;
            case ApicRegister.LogicalDestination:
                if (!x2)
                {
                    _ldr = value & 0xFF00_0000;
                }

                break;
            case ApicRegister.DestinationFormat:
                if (!x2)
                {
                    _dfr = value | 0x0FFF_FFFF;
                }

                break;
            case ApicRegister.SpuriousVector:
                _svr = value & SvrMask;
                if (!IsSoftwareEnabledLocked)
                {
                    // Software-disabling masks every LVT entry.
                    for (int i = 0; i < LvtCount; i++)
                    {
                        _lvt[i] |= LvtMasked;
                    }
                }

                break;
            case ApicRegister.ErrorStatus:
                // A write latches the errors collected since the last write, and clears them.
                _esr = _esrPending;
                _esrPending = 0;
                break;
            case ApicRegister.InterruptCommandLow:
                _icrLow = value & ~(1u << 12);
                output.Ipi = BuildIpiLocked(_icrLow, _icrHigh >> 24);
                break;
            case ApicRegister.InterruptCommandHigh:
                _icrHigh = value & 0xFF00_0000;
                break;
            case >= ApicRegister.LvtTimer and <= ApicRegister.LvtError:
                WriteLvtLocked((int)((register - ApicRegister.LvtTimer) >> 4), value);
                break;
            case ApicRegister.TimerInitialCount:
                if (!IsTscDeadlineMode)
                {
                    _timerInitialCount = value;
                    StartTimerLocked(_time.NowNanoseconds);
                }

                break;
            case ApicRegister.TimerDivideConfiguration:
                ChangeTimerDivideLocked(value & 0xB);
                break;
            case ApicRegister.SelfIpi:
                if (x2)
                {
                    output.Ipi = new ApicMessage((int)(value & VectorMask), ApicDeliveryMode.Fixed, false, _id, Shorthand: ApicDestinationShorthand.Self, Source: this);
                }

                break;
            default:
                // Read-only and reserved registers ignore xAPIC writes.
                break;
        }
    }

    private void WriteLvtLocked(int index, uint value)
    {
        if (!IsSoftwareEnabledLocked)
        {
            value |= LvtMasked;
        }

        uint old = _lvt[index];
        _lvt[index] = value & s_lvtWriteMasks[index];
        if (index != LvtTimer)
        {
            return;
        }

        uint oldMode = old & TimerModeMask;
        uint newMode = TimerMode;
        if (oldMode == newMode)
        {
            return;
        }

        // Entering or leaving TSC-deadline mode stops the timer (as KVM does); one-shot and periodic switch in flight.
        if ((oldMode == TimerModeTscDeadline) != (newMode == TimerModeTscDeadline))
        {
            _timerInitialCount = 0;
            _timerPeriodNs = 0;
            _tscDeadline = 0;
            SetTimerDeadline(Never);
        }
        else if (newMode == TimerModePeriodic && _timerPeriodNs > 0 && _timerPeriodNs < MinimumPeriodNanoseconds)
        {
            _timerPeriodNs = MinimumPeriodNanoseconds;
        }
    }

    private uint ProcessorPriorityLocked()
    {
        int isrv = _isr.Highest();
        uint isrClass = isrv < 0 ? 0 : (uint)isrv & 0xF0;
        return (_tpr & 0xF0) >= isrClass ? _tpr & 0xFF : isrClass;
    }

    private int HighestDeliverableLocked()
    {
        if (!IsHardwareEnabledLocked)
        {
            return -1;
        }

        int vector = _irr.Highest();
        if (vector < 0 || ((uint)vector & 0xF0) <= (ProcessorPriorityLocked() & 0xF0))
        {
            return -1;
        }

        return vector;
    }

    /// <summary>Clears the highest in-service vector; returns it when level-triggered (to broadcast), else -1.</summary>
    private int EndOfInterruptLocked()
    {
        int vector = _isr.Highest();
        if (vector < 0)
        {
            return -1;
        }

        _isr.Clear(vector);
        return _tmr.Test(vector) ? vector : -1;
    }

    private bool AcceptInterruptLocked(int vector, bool levelTriggered)
    {
        if (!IsHardwareEnabledLocked)
        {
            return false;
        }

        if (vector < 16 || vector > 255)
        {
            RecordErrorLocked(ErrorReceiveIllegalVector);
            return false;
        }

        if (!IsSoftwareEnabledLocked)
        {
            // A software-disabled APIC keeps what is pending but accepts no new fixed interrupts (as KVM).
            return false;
        }

        _irr.Set(vector);
        _tmr.Assign(vector, levelTriggered);
        return true;
    }

    private void RecordErrorLocked(uint error)
    {
        _esrPending |= error;
        uint lvt = _lvt[LvtError];
        int vector = (int)(lvt & VectorMask);
        if ((lvt & LvtMasked) == 0 && vector >= 16 && IsSoftwareEnabledLocked)
        {
            _irr.Set(vector);
            _tmr.Clear(vector);
        }
    }

    /// <summary>Delivers a local interrupt source through its LVT entry.</summary>
    private void DeliverLocalLocked(int index)
    {
        uint lvt = _lvt[index];
        if ((lvt & LvtMasked) != 0)
        {
            return;
        }

        var mode = index == LvtTimer ? ApicDeliveryMode.Fixed : (ApicDeliveryMode)((lvt >> 8) & 7);
        switch (mode)
        {
            case ApicDeliveryMode.Fixed:
                AcceptInterruptLocked((int)(lvt & VectorMask), levelTriggered: false);
                break;
            case ApicDeliveryMode.Nmi:
                _nmiPending = true;
                break;
            case ApicDeliveryMode.ExtInt:
                // The 8259 supplies the vector; AcceptsPicInterrupts lets the CPU see it.
                break;
            default:
                _log.Warn(LogSource, $"cpu {VcpuId}: LVT {index} delivery mode {mode} not supported");
                break;
        }
    }

    private void SetLint(int index, bool level)
    {
        bool wake;
        lock (_lock)
        {
            bool rising = level && !_lintLevel[index - LvtLint0];
            _lintLevel[index - LvtLint0] = level;
            bool hadEvents = _eventsHint;
            if (rising && IsHardwareEnabledLocked)
            {
                DeliverLocalLocked(index);
            }

            UpdateSnapshots();

            // Wake for a new local event, or for the 8259's request when it reaches this CPU.
            wake = (_eventsHint && !hadEvents) || (level && index == LvtLint0 && _acceptsPicInterrupts);
        }

        if (wake)
        {
            Wake();
        }
    }

    private ApicMessage? BuildIpiLocked(uint icrLow, uint destination)
    {
        int vector = (int)(icrLow & VectorMask);
        var mode = (ApicDeliveryMode)((icrLow >> 8) & 7);
        if ((mode == ApicDeliveryMode.Fixed || mode == ApicDeliveryMode.LowestPriority) && vector < 16)
        {
            RecordErrorLocked(ErrorSendIllegalVector);
            return null;
        }

        return new ApicMessage(
            vector,
            mode,
            LogicalDestination: (icrLow & (1u << 11)) != 0,
            Destination: destination,
            LevelTriggered: (icrLow & (1u << 15)) != 0,
            Assert: (icrLow & (1u << 14)) != 0,
            Shorthand: (ApicDestinationShorthand)((icrLow >> 18) & 3),
            Source: this);
    }

    /// <summary>Whether a message's destination field selects this APIC (shorthands are the bus's business).</summary>
    public bool MatchesDestination(in ApicMessage message)
    {
        lock (_lock)
        {
            if (!IsHardwareEnabledLocked)
            {
                return false;
            }

            uint destination = message.Destination;
            if (IsX2ApicModeLocked)
            {
                // Messages from the I/O APIC and MSIs carry 8-bit destinations: 0xFF still means everyone.
                if (destination == 0xFFFF_FFFF || (!message.IsIpi && destination == 0xFF))
                {
                    return true;
                }

                if (!message.LogicalDestination)
                {
                    return destination == _id;
                }

                return (destination >> 16) == (_ldr >> 16) && (destination & _ldr & 0xFFFF) != 0;
            }

            uint destination8 = destination & 0xFF;
            if (destination8 == 0xFF)
            {
                return true;
            }

            if (!message.LogicalDestination)
            {
                return destination8 == (_id & 0xFF);
            }

            uint logicalId = _ldr >> 24;
            if ((_dfr >> 28) == 0xF)
            {
                return (logicalId & destination8) != 0;
            }

            // Cluster model: high nibble selects the cluster, low nibble the members.
            return (destination8 >> 4) == (logicalId >> 4) && (destination8 & logicalId & 0xF) != 0;
        }
    }

    /// <summary>Arbitration priority for lowest-priority delivery (the TPR, as KVM approximates it).</summary>
    public uint ArbitrationPriority
    {
        get
        {
            lock (_lock)
            {
                return _tpr & 0xF0;
            }
        }
    }

    // ---------------------------------------------------------------- timer

    private void StartTimerLocked(long now)
    {
        if (_timerInitialCount == 0)
        {
            _timerPeriodNs = 0;
            SetTimerDeadline(Never);
            return;
        }

        // The bus runs at 1 GHz: one count is Divisor nanoseconds. At most 2^32 * 128 ns (about 9 minutes).
        _timerPeriodNs = _timerInitialCount * TimerDivisor * (PlatformTimeBase.NanosecondsPerSecond / PlatformTimeBase.ApicBusFrequencyHz);
        if (TimerMode == TimerModePeriodic && _timerPeriodNs < MinimumPeriodNanoseconds)
        {
            _log.Warn(LogSource, $"cpu {VcpuId}: periodic timer of {_timerPeriodNs} ns raised to {MinimumPeriodNanoseconds} ns");
            _timerPeriodNs = MinimumPeriodNanoseconds;
        }

        SetTimerDeadline(now + _timerPeriodNs);
    }

    private void ChangeTimerDivideLocked(uint value)
    {
        long oldDivisor = TimerDivisor;
        _timerDivideConfiguration = value;
        long newDivisor = TimerDivisor;
        if (oldDivisor == newDivisor || IsTscDeadlineMode || _timerPeriodNs == 0 || _timerDeadlineNs == Never)
        {
            return;
        }

        // Counting continues from the current count at the new rate.
        long now = _time.NowNanoseconds;
        long remaining = Math.Max(0, _timerDeadlineNs - now);
        _timerPeriodNs = Math.Max(_timerPeriodNs / oldDivisor * newDivisor, TimerMode == TimerModePeriodic ? MinimumPeriodNanoseconds : 1);
        SetTimerDeadline(now + (remaining / oldDivisor * newDivisor));
    }

    private uint TimerCurrentCountLocked(long now)
    {
        if (IsTscDeadlineMode || _timerPeriodNs == 0 || _timerDeadlineNs == Never)
        {
            return 0;
        }

        long remaining = _timerDeadlineNs - now;
        if (TimerMode == TimerModePeriodic)
        {
            remaining %= _timerPeriodNs;
            if (remaining < 0)
            {
                remaining += _timerPeriodNs;
            }
        }
        else if (remaining < 0)
        {
            return 0;
        }

        long count = remaining / TimerDivisor;
        return count > uint.MaxValue ? uint.MaxValue : (uint)count;
    }

    private bool UpdateTimerLocked(long now)
    {
        if (now < _timerDeadlineNs)
        {
            return false;
        }

        DeliverLocalLocked(LvtTimer);
        if (IsTscDeadlineMode)
        {
            _tscDeadline = 0;
            SetTimerDeadline(Never);
        }
        else if (TimerMode == TimerModePeriodic && _timerPeriodNs > 0)
        {
            // Missed periods coalesce into the one interrupt just raised.
            long missed = (now - _timerDeadlineNs) / _timerPeriodNs;
            SetTimerDeadline(_timerDeadlineNs + ((missed + 1) * _timerPeriodNs));
        }
        else
        {
            SetTimerDeadline(Never);
        }

        return true;
    }

    private void SetTimerDeadline(long deadline) => Volatile.Write(ref _timerDeadlineNs, deadline);

    // ---------------------------------------------------------------- reset and bookkeeping

    private void ResetRegisters(bool powerOn)
    {
        _tpr = 0;
        _ldr = IsX2ApicModeLocked ? ((_id >> 4) << 16) | (1u << (int)(_id & 0xF)) : 0;
        _dfr = 0xFFFF_FFFF;
        _svr = 0xFF;
        _irr.ClearAll();
        _isr.ClearAll();
        _tmr.ClearAll();
        _esr = 0;
        _esrPending = 0;
        _icrLow = 0;
        _icrHigh = 0;
        for (int i = 0; i < LvtCount; i++)
        {
            _lvt[i] = LvtMasked;
        }

        // KVM's LINT0_REENABLED quirk: the BSP comes out of reset in virtual-wire mode, so the 8259
        // reaches it before the guest programs the APIC (there is no BIOS to do it).
        if (powerOn && IsBootProcessor)
        {
            _lvt[LvtLint0] = (uint)ApicDeliveryMode.ExtInt << 8;
        }

        _timerInitialCount = 0;
        _timerDivideConfiguration = 0;
        _timerPeriodNs = 0;
        _tscDeadline = 0;
        SetTimerDeadline(Never);
        _nmiPending = false;
    }

    private void UpdateSnapshots()
    {
        _eventsHint = !_irr.IsEmpty || _nmiPending || _initPending || _sipiVector >= 0;
        uint lint0 = _lvt[LvtLint0];
        _acceptsPicInterrupts = !IsHardwareEnabledLocked
            || ((lint0 & LvtMasked) == 0 && ((lint0 >> 8) & 7) == (uint)ApicDeliveryMode.ExtInt);
        _mmioEnabled = IsHardwareEnabledLocked && !IsX2ApicModeLocked;
    }

    private void Flush(in PendingOutput output)
    {
        if (output.Ipi is ApicMessage ipi)
        {
            _bus.Deliver(ipi);
        }

        if (output.EoiVector >= 0)
        {
            _bus.BroadcastEoi(output.EoiVector);
        }
    }

    /// <summary>Work a register write leaves for after the lock is released.</summary>
    private struct PendingOutput
    {
        public ApicMessage? Ipi;
        public int EoiVector;

        public PendingOutput()
        {
            Ipi = null;
            EoiVector = -1;
        }
    }

    /// <summary>The APIC's registers, pending events and timer (its deadline is in the restored virtual time).</summary>
    internal void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            _irr.Save(w);
            _isr.Save(w);
            _tmr.Save(w);
            w.Write(_lvt);
            w.Write(_lintLevel[0]);
            w.Write(_lintLevel[1]);
            w.Write(_apicBase);
            foreach (uint v in (ReadOnlySpan<uint>)[_id, _tpr, _ldr, _dfr, _svr, _esr, _esrPending, _icrLow, _icrHigh, _timerInitialCount, _timerDivideConfiguration])
            {
                w.Write(v);
            }

            w.Write(_timerPeriodNs);
            w.Write(Volatile.Read(ref _timerDeadlineNs));
            w.Write(_tscDeadline);
            w.Write(_nmiPending);
            w.Write(_initPending);
            w.Write(_sipiVector);
            w.Write(_waitingForSipi);
        }
    }

    internal void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            _irr.Load(r);
            _isr.Load(r);
            _tmr.Load(r);
            r.ReadUInt32Array(_lvt.Length).CopyTo(_lvt, 0);
            _lintLevel[0] = r.ReadBoolean();
            _lintLevel[1] = r.ReadBoolean();
            _apicBase = r.ReadUInt64();
            _id = r.ReadUInt32();
            _tpr = r.ReadUInt32();
            _ldr = r.ReadUInt32();
            _dfr = r.ReadUInt32();
            _svr = r.ReadUInt32();
            _esr = r.ReadUInt32();
            _esrPending = r.ReadUInt32();
            _icrLow = r.ReadUInt32();
            _icrHigh = r.ReadUInt32();
            _timerInitialCount = r.ReadUInt32();
            _timerDivideConfiguration = r.ReadUInt32();
            _timerPeriodNs = r.ReadInt64();
            long deadline = r.ReadInt64();
            _tscDeadline = r.ReadUInt64();
            _nmiPending = r.ReadBoolean();
            _initPending = r.ReadBoolean();
            int sipi = r.ReadInt32();
            if (sipi is < -1 or > 255 || _timerPeriodNs < 0)
            {
                throw r.Invalid("local APIC values out of range");
            }

            _sipiVector = sipi;
            _waitingForSipi = r.ReadBoolean();
            SetTimerDeadline(deadline);
            UpdateSnapshots();
        }

        _wakeup.Set();
    }
}
