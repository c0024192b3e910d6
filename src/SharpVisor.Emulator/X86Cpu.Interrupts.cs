using System.Buffers.Binary;

namespace SharpVisor.Emulator;

/// <summary>
/// Event delivery: exceptions, software interrupts, external interrupts and NMIs through the
/// real-mode IVT, the 32-bit IDT (with the TSS stack switch) or the 64-bit IDT (with IST
/// stacks); double and triple faults; IRET; the STI/MOV SS interrupt shadow; HLT, INIT and
/// start-up IPIs. The software accelerator's vCPU loop uses the public members between
/// <see cref="Run"/> calls, on the vCPU's thread.
/// </summary>
public sealed partial class X86Cpu
{
    private bool _waitingForStartup;
    private bool _nmiBlocked;
    private string? _shutdownReason;

    // External interrupts (and NMIs after MOV SS) wait while _instructions <= this: the STI/MOV SS shadow.
    private long _interruptShadowEnd = -1;

    /// <summary>How an event reached the CPU: it decides the pushed RIP, the gate-DPL check and the EXT bit.</summary>
    private enum EventKind
    {
        /// <summary>An exception the processor detected (fault, or abort).</summary>
        Exception,

        /// <summary>INT n, INT3, INTO: the gate's DPL must allow the CPL.</summary>
        Software,

        /// <summary>INT1 (ICEBP): a software trap without the DPL check.</summary>
        Icebp,

        /// <summary>
        /// A #DB the debug machinery raises (instruction breakpoint fault; data breakpoint or
        /// single-step trap): delivered as an exception, but the pushed RF is RFLAGS' own.
        /// </summary>
        Debug,

        /// <summary>An external interrupt from the interrupt controller.</summary>
        External,

        Nmi,
    }

    /// <summary>The platform around this CPU (MSRs beyond the core, TSC, CPUID adjustments, CR8).</summary>
    public ICpuPlatform? Platform { get; set; }

    /// <summary>
    /// System mode: exceptions go through the guest's IDT (IVT in real mode) instead of ending
    /// <see cref="Run"/>; a triple fault ends it with <see cref="CpuStopReason.TripleFault"/>.
    /// </summary>
    public bool DeliverExceptions { get; set; }

    /// <summary>
    /// When set, <see cref="Run"/> returns <see cref="CpuStopReason.InterruptWindow"/> as soon as
    /// <see cref="CanAcceptInterrupt"/> holds (after an STI and its shadow, a POPF or an IRET that sets
    /// IF), so a pending interrupt is not held back until the instruction budget runs out.
    /// </summary>
    public bool InterruptWindowRequested
    {
        get => (Attention() & AttentionInterruptWindow) != 0;
        set
        {
            if (value != InterruptWindowRequested)
            {
                SetAttention(AttentionInterruptWindow, value);
            }
        }
    }

    /// <summary>An NMI is latched (held by NMI blocking or a shadow) until it can be delivered: an attention bit.</summary>
    private bool NmiPending
    {
        get => (Attention() & AttentionNmi) != 0;
        set
        {
            if (value != NmiPending)
            {
                SetAttention(AttentionNmi, value);
            }
        }
    }

    /// <summary>True when an external interrupt may be delivered now: RFLAGS.IF=1, no STI/MOV SS shadow, not waiting for SIPI.</summary>
    public bool CanAcceptInterrupt =>
        (_flags & RflagsBits.Interrupt) != 0 && !InInterruptShadow && !_waitingForStartup && _shutdownReason is null;

    /// <summary>True after HLT until an interrupt, NMI, INIT or SIPI wakes the CPU.</summary>
    public bool IsHalted => _halted;

    /// <summary>True after INIT until a start-up IPI arrives.</summary>
    public bool IsWaitingForStartup => _waitingForStartup;

    /// <summary>True from NMI delivery until the next IRET: further NMIs are held (one is latched).</summary>
    public bool IsNmiBlocked => _nmiBlocked;

    /// <summary>Why the processor shut down (a triple fault), or null while it runs.</summary>
    public string? ShutdownReason => _shutdownReason;

    private bool InInterruptShadow => _instructions <= _interruptShadowEnd;

    /// <summary>Delivers external interrupt <paramref name="vector"/> through the IDT now (call only when <see cref="CanAcceptInterrupt"/>); wakes from HLT.</summary>
    public void DeliverInterrupt(byte vector)
    {
        if (!CanAcceptInterrupt)
        {
            throw new InvalidOperationException("the CPU cannot accept an external interrupt now (IF=0, interrupt shadow, or waiting for SIPI)");
        }

        _halted = false;
        _tracking.EnterGuest(); // pushes to the guest's stack, as Run's stores
        try
        {
            RaiseEvent(vector, null, EventKind.External, _rip, _rip);
        }
        finally
        {
            _tracking.LeaveGuest();
        }
    }

    /// <summary>Delivers an NMI (vector 2) unless one is being handled (then one is latched until IRET); wakes from HLT.</summary>
    public void DeliverNmi()
    {
        if (_waitingForStartup || _shutdownReason is not null)
        {
            return;
        }

        _halted = false;
        if (_nmiBlocked || InInterruptShadow)
        {
            NmiPending = true;
            return;
        }

        _tracking.EnterGuest();
        try
        {
            DeliverNmiNow();
        }
        finally
        {
            _tracking.LeaveGuest();
        }
    }

    private void DeliverNmiNow()
    {
        NmiPending = false;
        _nmiBlocked = true;
        RaiseEvent((byte)ExceptionVector.Nmi, null, EventKind.Nmi, _rip, _rip);
    }

    /// <summary>Ends a HLT without an event (a paravirtual unhalt): execution continues after the HLT.</summary>
    public void WakeFromHalt() => _halted = false;

    /// <summary>INIT: the architectural INIT state, then wait for a start-up IPI.</summary>
    public void EnterInitState()
    {
        ResetArchitecturalState(init: true);
        _waitingForStartup = true;
    }

    /// <summary>Start-up IPI: real mode at CS = vector &lt;&lt; 8, IP = 0, if waiting for one.</summary>
    public void DeliverStartup(byte vector)
    {
        if (!_waitingForStartup)
        {
            return;
        }

        _waitingForStartup = false;
        _halted = false;
        _segs[SegCs] = SegmentCache.RealMode((ushort)(vector << 8), code: true);
        _rip = 0;
        UpdateMode();
    }

    /// <summary>Clears the event state Reset, INIT and SetState start from.</summary>
    private void ResetEventState()
    {
        _halted = false;
        _waitingForStartup = false;
        _nmiBlocked = false;
        NmiPending = false;
        _shutdownReason = null;
        _interruptShadowEnd = -1;
    }

    /// <summary>STI (from IF=0), MOV SS and POP SS: no interrupt before the next instruction completes.</summary>
    internal void BeginInterruptShadow() => _interruptShadowEnd = _instructions + (_inBlock ? _opIndex : 0) + 1;

    /// <summary>
    /// Checked at block boundaries while an NMI is latched or the accelerator waits for an
    /// interrupt window: delivers a latched NMI that may go now; says whether Run must return
    /// (the window is open, or delivering the NMI shut the processor down).
    /// </summary>
    private bool ServiceEventRequests()
    {
        if (NmiPending && !_nmiBlocked && !InInterruptShadow)
        {
            DeliverNmiNow();
            if (_shutdownReason is not null)
            {
                return true;
            }
        }

        return InterruptWindowRequested && CanAcceptInterrupt;
    }

    /// <summary>
    /// An NMI latched while a shadow held it (STI; HLT: the NMI arrived between them) wakes the
    /// HLT once it began, as on hardware; without this it would wait for a wake-up that already came.
    /// </summary>
    private bool TakeLatchedNmiInHalt()
    {
        if (!NmiPending || _nmiBlocked || InInterruptShadow)
        {
            return false;
        }

        _tracking.EnterGuest();
        try
        {
            DeliverNmiNow();
        }
        finally
        {
            _tracking.LeaveGuest();
        }

        return _shutdownReason is null;
    }

    /// <summary>Hands an exception raised by an instruction to the IDT (system mode).</summary>
    private void RaiseException(CpuException e, ulong faultRip)
    {
        EventKind kind = !e.IsSoftwareInterrupt ? EventKind.Exception
            : e.Vector == (byte)ExceptionVector.Debug && e.InstructionLength == 1 ? EventKind.Icebp
            : EventKind.Software;
        RaiseEvent(e.Vector, e.ErrorCode, kind, _rip, faultRip);
    }

    /// <summary>
    /// Delivers an event; a fault while delivering it becomes the next event to deliver, or a double
    /// fault (contributory after contributory, anything but benign after #PF), and a fault while
    /// delivering a double fault shuts the processor down.
    /// </summary>
    private void RaiseEvent(byte vector, uint? errorCode, EventKind kind, ulong returnRip, ulong faultRip)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                DeliverEvent(vector, errorCode, kind, returnRip);
                return;
            }
            catch (CpuException second)
            {
                string first = kind == EventKind.Exception ? new CpuException((ExceptionVector)vector, errorCode).Message : $"{kind} vector 0x{vector:x2}";
                if ((kind == EventKind.Exception && vector == (byte)ExceptionVector.DoubleFault) || attempt >= 4)
                {
                    Shutdown($"triple fault: {second.Message} while delivering {first} at RIP 0x{faultRip:x}");
                    return;
                }

                // The faulting event is discarded; RIP stays at the instruction (or interruption point).
                _rip = faultRip;
                bool doubleFault = kind == EventKind.Exception && IsDoubleFault(vector, second.Vector);
                vector = doubleFault ? (byte)ExceptionVector.DoubleFault : second.Vector;
                errorCode = doubleFault ? 0 : second.ErrorCode;
                kind = EventKind.Exception;
                returnRip = faultRip;
            }
        }
    }

    /// <summary>
    /// The RFLAGS image an event pushes: RF set for every fault-class exception (SDM 17.3.1.1: all
    /// faults but the instruction-breakpoint #DB, which is <see cref="EventKind.Debug"/>), so IRET
    /// restarts the faulting instruction without re-triggering an instruction breakpoint; traps,
    /// aborts, NMIs and interrupts push RF as it is.
    /// </summary>
    private static ulong PushedFlags(ulong flags, byte vector, EventKind kind) =>
        kind == EventKind.Exception && IsFaultClass(vector) ? flags | RflagsBits.Resume : flags;

    /// <summary>Fault-class exceptions: #DE, #DB (general detect, here), #BR, #UD, #NM, #TS, #NP, #SS, #GP, #PF, #MF, #AC, #XM, #VE, #CP.</summary>
    private static bool IsFaultClass(byte vector) =>
        vector is 0 or 1 or 5 or 6 or 7 or 10 or 11 or 12 or 13 or 14 or 16 or 17 or 19 or 20 or 21;

    private static bool IsContributory(byte vector) =>
        vector is (byte)ExceptionVector.DivideError or (byte)ExceptionVector.InvalidTss or (byte)ExceptionVector.SegmentNotPresent
            or (byte)ExceptionVector.StackSegment or (byte)ExceptionVector.GeneralProtection;

    /// <summary>SDM vol. 3, table 6-5: which second exception turns the first into #DF.</summary>
    private static bool IsDoubleFault(byte first, byte second)
    {
        bool secondSerious = IsContributory(second) || second == (byte)ExceptionVector.PageFault;
        return (IsContributory(first) && IsContributory(second)) || (first == (byte)ExceptionVector.PageFault && secondSerious);
    }

    private void Shutdown(string reason)
    {
        _shutdownReason = reason;
        _halted = false;
    }

    private static SharpVisor.Machine.Hypervisor.ParavirtualEvent ParavirtualEventOf(byte vector, uint? errorCode, EventKind kind, ulong returnRip) =>
        new(vector, kind is EventKind.Exception ? errorCode : null, kind switch
        {
            EventKind.Exception or EventKind.Debug => SharpVisor.Machine.Hypervisor.ParavirtualEventKind.Exception,
            EventKind.Software or EventKind.Icebp => SharpVisor.Machine.Hypervisor.ParavirtualEventKind.Software,
            EventKind.Nmi => SharpVisor.Machine.Hypervisor.ParavirtualEventKind.Nmi,
            _ => SharpVisor.Machine.Hypervisor.ParavirtualEventKind.External,
        }, returnRip);

    /// <summary>Delivers one event through the IVT or IDT; throws the fault that stops it, having changed nothing but CR2.</summary>
    private void DeliverEvent(byte vector, uint? errorCode, EventKind kind, ulong returnRip)
    {
        if (Platform is { } platform && _mode == CpuMode.Long64 && platform.TryParavirtualEvent(this, ParavirtualEventOf(vector, errorCode, kind, returnRip)))
        {
            _halted = false;
            _interruptShadowEnd = -1;
            if (_inBlock)
            {
                // Delivered from inside a block: leave it for the new RIP. Outside one (an exception
                // caught by RunInGuest, an interrupt between blocks) a stale ExitJump would make the
                // handler's first block stop after one instruction and run again in place.
                _exitBlock = ExitJump;
            }

            return;
        }

        if (_mode == CpuMode.Real)
        {
            DeliverRealMode(vector, returnRip);
        }
        else if (_mode == CpuMode.Virtual8086)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0); // virtual-8086 mode is not supported
        }
        else
        {
            DeliverProtected(vector, kind == EventKind.Exception ? errorCode : null, kind, returnRip);
        }

        _halted = false;
        _interruptShadowEnd = -1;
    }

    private void DeliverRealMode(byte vector, ulong returnRip)
    {
        uint entry = (uint)vector * 4;
        if (entry + 3 > _idtLimit)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        uint pointer = (uint)ReadSystem((uint)(_idtBase + entry), 4);
        ulong flags = GetRflags();
        PushFrame([flags, _segs[SegCs].Selector, returnRip], 2);
        SetRflags(flags & ~(RflagsBits.Interrupt | RflagsBits.Trap | RflagsBits.AlignmentCheck | RflagsBits.Resume));
        ref SegmentCache cs = ref _segs[SegCs];
        cs.Selector = (ushort)(pointer >> 16);
        cs.Base = (ulong)(pointer >> 16) << 4;
        _rip = pointer & 0xFFFF;
        UpdateMode();
    }

    private void DeliverProtected(byte vector, uint? errorCode, EventKind kind, ulong returnRip)
    {
        bool longMode = LongModeActive;
        uint ext = kind is EventKind.Software or EventKind.Icebp ? 0u : 1u;
        uint idtError = ((uint)vector << 3) | 2 | ext;
        int gateSize = longMode ? 16 : 8;
        if ((uint)vector * (uint)gateSize + (uint)gateSize - 1 > _idtLimit)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, idtError);
        }

        Span<byte> gate = stackalloc byte[16];
        AccessSystem(SystemLinear(_idtBase + ((ulong)vector * (ulong)gateSize)), gate[..gateSize], MemoryAccess.Read);
        ulong low = BinaryPrimitives.ReadUInt64LittleEndian(gate);
        ulong high = longMode ? BinaryPrimitives.ReadUInt64LittleEndian(gate[8..]) : 0;
        int type = (int)(low >> 40) & 0x1F; // with S: a gate has S = 0
        int gateDpl = (int)(low >> 45) & 3;
        bool gate32;
        if (longMode)
        {
            if (type is not (0xE or 0xF))
            {
                throw new CpuException(ExceptionVector.GeneralProtection, idtError);
            }

            gate32 = true;
        }
        else
        {
            // 16- and 32-bit interrupt and trap gates; task gates (task switches) are not supported.
            if (type is not (0x6 or 0x7 or 0xE or 0xF))
            {
                throw new CpuException(ExceptionVector.GeneralProtection, idtError);
            }

            gate32 = type >= 0xE;
        }

        if (kind == EventKind.Software && gateDpl < _cpl)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, idtError);
        }

        if ((low & (1UL << 47)) == 0)
        {
            throw new CpuException(ExceptionVector.SegmentNotPresent, idtError);
        }

        bool interruptGate = (type & 1) == 0;
        ushort selector = (ushort)(low >> 16);
        ulong offset = (low & 0xFFFF) | ((low >> 32) & 0xFFFF_0000);
        if (longMode)
        {
            offset |= high << 32;
        }
        else if (!gate32)
        {
            offset &= 0xFFFF;
        }

        int ist = longMode ? (int)(low >> 32) & 7 : 0;

        // The handler's code segment.
        if ((selector & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, ext);
        }

        ulong descriptor = ReadDescriptor(selector, ExceptionVector.GeneralProtection, ext);
        var cs = SegmentCache.FromDescriptor(selector, descriptor);
        if (!cs.IsCode || cs.Dpl > _cpl || (longMode && (!cs.Long || cs.DefaultBig)))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector, ext));
        }

        if (!cs.Present)
        {
            throw new CpuException(ExceptionVector.SegmentNotPresent, SelectorError(selector, ext));
        }

        int newCpl = cs.Conforming ? _cpl : cs.Dpl;
        cs.Selector = (ushort)((selector & 0xFFFC) | newCpl);
        cs.Attributes |= 1;
        if (!longMode && offset > cs.Limit)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, ext);
        }

        if (longMode && !IsCanonical(offset))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, ext);
        }

        ulong flags = GetRflags();
        ulong oldRsp = Gpr(Rsp);
        SegmentCache oldSs = _segs[SegSs];
        SegmentCache ss = oldSs;
        ulong rsp = oldRsp;
        bool stackSwitch = newCpl < _cpl;
        if (longMode)
        {
            if (stackSwitch || ist != 0)
            {
                rsp = ReadTss64Stack(ist != 0 ? 36 + ((ist - 1) * 8) : 4 + (newCpl * 8), ext);
            }

            if (stackSwitch)
            {
                ss = SegmentCache.Null((ushort)newCpl, newCpl);
            }

            rsp &= ~0xFUL;
            int count = errorCode is null ? 5 : 6;
            Span<ulong> frame = stackalloc ulong[6];
            frame[0] = oldSs.Selector;
            frame[1] = oldRsp;
            frame[2] = PushedFlags(flags, vector, kind);
            frame[3] = _segs[SegCs].Selector;
            frame[4] = returnRip;
            frame[5] = errorCode ?? 0;
            rsp = WriteEventFrame(ss, rsp, ulong.MaxValue, frame[..count], 8, newCpl, 0);
        }
        else
        {
            ulong stackMask;
            if (stackSwitch)
            {
                (ushort newSsSelector, ulong newEsp) = ReadTss32Stack(newCpl, ext);
                ss = CheckInterruptStack(newSsSelector, newCpl, ext);
                rsp = newEsp;
                stackMask = ss.DefaultBig ? 0xFFFF_FFFFUL : 0xFFFF;
            }
            else
            {
                stackMask = _stackMask;
            }

            int size = gate32 ? 4 : 2;
            Span<ulong> frame = stackalloc ulong[6];
            int count = 0;
            if (stackSwitch)
            {
                frame[count++] = oldSs.Selector;
                frame[count++] = oldRsp;
            }

            frame[count++] = PushedFlags(flags, vector, kind);
            frame[count++] = _segs[SegCs].Selector;
            frame[count++] = returnRip;
            if (errorCode is uint code)
            {
                frame[count++] = code;
            }

            ulong newRsp = WriteEventFrame(ss, rsp, stackMask, frame[..count], size, newCpl, stackSwitch ? SelectorError(ss.Selector, ext) : ext);
            rsp = (rsp & ~stackMask) | (newRsp & stackMask);
        }

        // Everything checked and written: commit.
        MarkAccessed(selector, descriptor);
        ulong cleared = RflagsBits.Trap | RflagsBits.NestedTask | RflagsBits.Resume | RflagsBits.Virtual8086;
        if (interruptGate)
        {
            cleared |= RflagsBits.Interrupt;
        }

        SetRflags(flags & ~cleared);
        _segs[SegCs] = cs;
        _segs[SegSs] = ss;
        Gpr(Rsp) = rsp;
        _rip = offset;
        UpdateMode();
    }

    /// <summary>Writes an interrupt stack frame below <paramref name="rsp"/> in one access and returns the new stack pointer.</summary>
    private ulong WriteEventFrame(in SegmentCache ss, ulong rsp, ulong stackMask, ReadOnlySpan<ulong> values, int size, int newCpl, uint error)
    {
        int length = values.Length * size;
        ulong newRsp = rsp - (ulong)length;
        ulong linear = StackFrameLinear(ss, newRsp & stackMask, length, stackMask, error);
        Span<byte> frame = stackalloc byte[length];
        FillFrame(frame, values, size);
        if (newCpl < 3)
        {
            AccessSystem(linear, frame, MemoryAccess.Write);
        }
        else
        {
            WriteBytes(linear, frame);
        }

        return newRsp;
    }

    /// <summary>A stack pointer from the 64-bit TSS (RSPn or ISTn at <paramref name="offset"/>); #TS(TR) when the TSS is too short.</summary>
    private ulong ReadTss64Stack(int offset, uint ext)
    {
        if (_tr.Unusable || (ulong)offset + 7 > _tr.Limit)
        {
            throw new CpuException(ExceptionVector.InvalidTss, SelectorError(_tr.Selector, ext));
        }

        return ReadSystem(_tr.Base + (ulong)offset, 8);
    }

    /// <summary>SSn:ESPn from a 32-bit (or 16-bit) TSS for privilege level <paramref name="cpl"/>.</summary>
    private (ushort Selector, ulong Esp) ReadTss32Stack(int cpl, uint ext)
    {
        bool tss32 = (_tr.Type & 8) != 0;
        int offset = tss32 ? 4 + (cpl * 8) : 2 + (cpl * 4);
        int size = tss32 ? 4 : 2;
        if (_tr.Unusable || (ulong)(offset + (2 * size) - 1) > _tr.Limit)
        {
            throw new CpuException(ExceptionVector.InvalidTss, SelectorError(_tr.Selector, ext));
        }

        ulong esp = ReadSystem((uint)(_tr.Base + (ulong)offset), size);
        ushort selector = (ushort)ReadSystem((uint)(_tr.Base + (ulong)offset + (ulong)size), 2);
        return (selector, esp);
    }

    /// <summary>Checks the inner stack segment an interrupt switches to: #TS(selector), or #SS(selector) if not present.</summary>
    private SegmentCache CheckInterruptStack(ushort selector, int cpl, uint ext)
    {
        uint error = SelectorError(selector, ext);
        if ((selector & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidTss, error);
        }

        ulong descriptor = ReadDescriptor(selector, ExceptionVector.InvalidTss, ext);
        var ss = SegmentCache.FromDescriptor(selector, descriptor);
        if ((selector & 3) != cpl || ss.Dpl != cpl || !ss.IsData || !ss.Writable)
        {
            throw new CpuException(ExceptionVector.InvalidTss, error);
        }

        if (!ss.Present)
        {
            throw new CpuException(ExceptionVector.StackSegment, error);
        }

        MarkAccessed(selector, descriptor);
        ss.Attributes |= 1;
        return ss;
    }

    /// <summary>IRET/IRETD/IRETQ with <paramref name="size"/>-byte slots. Ends NMI blocking.</summary>
    internal void InterruptReturn(int size)
    {
        ulong sizeMask = size == 2 ? 0xFFFFUL : size == 4 ? 0xFFFF_FFFFUL : ulong.MaxValue;
        Span<ulong> frame = stackalloc ulong[3];
        ulong rsp = PopFrame(frame, size, Gpr(Rsp));
        ulong ip = frame[0];
        ushort selector = (ushort)frame[1];
        ulong image = frame[2];
        ulong flags = GetRflags();

        if (_mode is CpuMode.Real or CpuMode.Virtual8086)
        {
            if (_mode == CpuMode.Virtual8086 && Iopl < 3)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }

            ulong changeable = (RflagsBits.Defined & ~(RflagsBits.Virtual8086 | RflagsBits.VirtualInterrupt | RflagsBits.VirtualInterruptPending)) & sizeMask;
            if (_mode == CpuMode.Virtual8086)
            {
                changeable &= ~RflagsBits.Iopl;
            }

            ref SegmentCache cs = ref _segs[SegCs];
            cs.Selector = selector;
            cs.Base = (ulong)selector << 4;
            Gpr(Rsp) = rsp;
            SetRflags((flags & ~changeable) | (image & changeable));
            _rip = ip & sizeMask;
            FinishInterruptReturn();
            return;
        }

        if ((flags & RflagsBits.NestedTask) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0); // task return: task switching is not supported
        }

        if ((image & RflagsBits.Virtual8086) != 0 && _cpl == 0 && !LongModeActive && size == 4)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0); // return to virtual-8086 mode is not supported
        }

        SegmentCache target = CheckReturnTarget(selector);
        int rpl = selector & 3;
        if (!(LongModeActive && target.Long))
        {
            ip &= sizeMask;
        }

        CheckInstructionPointer(target, ip);

        // RFLAGS bits the old privilege level may change.
        ulong writable = RflagsBits.Arithmetic | RflagsBits.Trap | RflagsBits.Direction | RflagsBits.NestedTask
            | RflagsBits.Resume | RflagsBits.AlignmentCheck | RflagsBits.Id;
        if (_cpl == 0)
        {
            writable |= RflagsBits.Iopl | RflagsBits.VirtualInterrupt | RflagsBits.VirtualInterruptPending;
        }

        if (_cpl <= Iopl)
        {
            writable |= RflagsBits.Interrupt;
        }

        writable &= sizeMask;
        ulong newFlags = (flags & ~writable) | (image & writable);

        bool popStack = _is64 || rpl > _cpl;
        SegmentCache ss = _segs[SegSs];
        ulong newRsp = rsp;
        if (popStack)
        {
            Span<ulong> outer = stackalloc ulong[2];
            PopFrame(outer, size, rsp);
            ss = CheckReturnStack((ushort)outer[1], rpl, target);
            newRsp = outer[0];
        }

        int oldCpl = _cpl;
        _segs[SegCs] = target;
        _segs[SegSs] = ss;
        SetRflags(newFlags);
        _resumeFlagLoaded = (newFlags & RflagsBits.Resume) != 0; // RF stays for the next instruction
        _rip = ip;
        UpdateMode();
        Gpr(Rsp) = popStack && (_is64 || size == 8) ? newRsp : (Gpr(Rsp) & ~_stackMask) | (newRsp & _stackMask);
        if (_cpl > oldCpl)
        {
            NullOuterDataSegments();
        }

        FinishInterruptReturn();
    }

    private void FinishInterruptReturn()
    {
        _nmiBlocked = false;
        _exitBlock = ExitJump;
        UpdateMode();
    }
}
