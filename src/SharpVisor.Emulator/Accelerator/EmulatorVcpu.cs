using SharpVisor.Machine.Snapshots;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Platform;
using SharpVisor.Emulator.Translator;
using SharpVisor.Emulator.Translator.Native;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// One vCPU of the software accelerator: an <see cref="X86Cpu"/> in system mode (exceptions go
/// through the guest's IDT) with its local APIC. <see cref="Run"/> interprets the guest in slices
/// of a bounded number of instructions; between slices it serves the timers and takes the local
/// APIC's events in architectural order (INIT, SIPI, NMI, then a maskable interrupt when the CPU
/// accepts one). HLT and wait-for-SIPI sleep on the APIC's wake-up event until something can
/// run or the next timer deadline, so an idle guest costs no host CPU.
/// </summary>
public sealed class EmulatorVcpu : IVcpu, ISnapshotable
{
    /// <summary>
    /// Guest instructions per slice: well under a millisecond of interpretation, so timers are
    /// served and pending interrupts delivered within about a millisecond. A kick does not wait
    /// for the slice: it stops the CPU at the next block boundary.
    /// </summary>
    public const long SliceInstructions = 20_000;

    /// <summary>
    /// The shorter slice while an interrupt waits for the guest to set IF (KVM's interrupt
    /// window): the guest usually re-enables interrupts within a few instructions.
    /// </summary>
    public const long InterruptWindowSliceInstructions = 500;

    private const ulong RflagsInterruptEnable = 1UL << 9;

    private readonly EmulatorVirtualMachine _vm;
    private readonly X86Cpu _cpu;
    private readonly LocalApic _apic;
    private readonly SoftwarePlatform _platform;
    private int _kickPending;
    private int _running;
    private bool _halted;
    private bool _inInitState;
    private bool _windowOpenRequested;
    private int _pvUnhaltPending;

    // Paravirtual start/stop (Xen PV's VCPUOP_up/down): a state to load, or parked.
    private readonly object _paravirtualLock = new();
    private VcpuState? _paravirtualStart;
    private int _paravirtualDown;

    // Remote TLB flushes: a flag the vCPU takes when it enters a slice; the slice count tells a
    // requester that the vCPU has passed a slice boundary since it asked.
    private int _tlbFlushPending;
    private int _inSlice;
    private int _sliceEntries;

    internal EmulatorVcpu(EmulatorVirtualMachine vm, int id)
    {
        _vm = vm;
        Id = id;
        _platform = vm.Platform;
        _apic = _platform.IrqChip.GetLocalApic(id);
        var mmio = new EmulatorMmioHandler(_apic, vm.Mmio, Exits);
        var physical = new PhysicalMemory(vm.Memory, mmio);
        CpuPlatform = new EmulatorCpuPlatform(_platform, id, vm.VcpuCount, () => vm.Hypercalls, vm.Hypervisor) { Control = vm.Control, Template = vm.CpuTemplate };
        _cpu = new X86Cpu(physical, vm.CpuModel, vm.CreateMmu(vm.MmuMode))
        {
            Platform = CpuPlatform,
            DeliverExceptions = true,
            PortIo = VcpuPortIo.CreateBus(vm.PortIo, Exits),
            Diagnostics = line => vm.Platform.Log.Warn($"cpu {id}", line),
        };
        mmio.ApicWritten = _cpu.RequestEventCheck;
        _cpu.Protection = vm.Protection;
        _cpu.ProtectionVcpuId = id;
        _apic.Woken = _cpu.RequestStop;
        if (vm.CpuTemplate is { } template)
        {
            ApplyTemplate(template);
        }

        if (id == 0)
        {
            RipProfiler.StartIfRequested(_cpu);
        }
    }

    /// <summary>
    /// Checks the template's CPUID leaves exist on this CPU (as Firecracker refuses a leaf KVM does not
    /// offer) and sets its MSRs from the values this vCPU starts with.
    /// </summary>
    private void ApplyTemplate(SharpVisor.Machine.CpuTemplates.CpuTemplate template)
    {
        foreach (SharpVisor.Machine.CpuTemplates.CpuidModifier m in template.Cpuid)
        {
            uint rangeBase = m.Leaf & 0xF000_0000;
            uint highest = _cpu.QueryCpuid(rangeBase, 0).Eax;
            if (highest < rangeBase || m.Leaf > highest)
            {
                throw new InvalidOperationException($"the CPU template changes CPUID leaf 0x{m.Leaf:x} (subleaf 0x{m.Subleaf:x}), which this CPU does not offer (its highest leaf from 0x{rangeBase:x} is 0x{highest:x})");
            }
        }

        foreach (SharpVisor.Machine.CpuTemplates.MsrModifier m in template.Msrs)
        {
            if (!_cpu.TryGetMsrFromHost(m.Index, out ulong value))
            {
                throw new InvalidOperationException($"the CPU template sets MSR 0x{m.Index:x}, which the emulated CPU does not have");
            }

            ulong templated = m.Bits.Apply(value);
            if (!_cpu.TrySetMsrFromHost(m.Index, templated))
            {
                throw new InvalidOperationException($"the CPU template sets MSR 0x{m.Index:x} to 0x{templated:x}, which the emulated CPU refuses");
            }
        }
    }

    public int Id { get; }

    /// <summary>
    /// Counts a KVM user recognises: "io", "mmio", "hlt", "irq-injection", "nmi-injection",
    /// "irq-window", "init", "sipi", "intr" (kicks), plus "apic-access" (the local APIC page, which
    /// KVM handles in-kernel) and "instructions" (guest instructions retired); "mmu-*" (the paging
    /// technique) and "tier1-*" (instructions run by translated code, and on vCPU 0 the code
    /// cache's compiled/evicted/failed/resident blocks, IL bytes and compile time in µs).
    /// </summary>
    public ExitCounters Exits { get; } = new();

    private readonly MmuCounters _publishedMmu = new();
    private long _publishedTier1Instructions;
    private long _publishedJumpCacheMisses;
    private long _publishedBlocksDecoded;
    private PublishedTranslatorFigures _publishedTier1;
    private long _publishedNativeInstructions;
    private PublishedNativeFigures _publishedNative;

    private struct PublishedTranslatorFigures
    {
        public long Compiled;
        public long Evicted;
        public long Failed;
        public long Resident;
        public long IlBytes;
        public long JitMicroseconds;
    }

    private struct PublishedNativeFigures
    {
        public long Compiled;
        public long CodeBytes;
        public long EncodeMicroseconds;
        public long Resets;
        public long Failed;
    }

    /// <summary>The interpreter; for tests and diagnostics. Use it only while <see cref="Run"/> is not running.</summary>
    internal X86Cpu Cpu => _cpu;

    internal EmulatorCpuPlatform CpuPlatform { get; }

    public LocalApic LocalApic => _apic;

    /// <summary>Guest instructions retired on this vCPU.</summary>
    public long InstructionsExecuted => _cpu.InstructionsExecuted;

    /// <summary>The architectural state; call it while the vCPU is not running (paused or stopped), as on KVM.</summary>
    public VcpuState GetState()
    {
        VcpuState state = _cpu.GetState();
        state.ApicBase = _apic.ApicBase;
        state.Cr8 = (_apic.TaskPriority >> 4) & 0xF;
        return state;
    }

    /// <summary>Loads the registers; CR8 becomes the local APIC's task priority and APIC_BASE its base (the BSP flag is fixed).</summary>
    public void SetState(VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ulong bootFlag = _apic.ApicBase & LocalApic.ApicBaseBsp;
        ulong apicBase = (state.ApicBase & ~LocalApic.ApicBaseBsp) | bootFlag;
        if (apicBase != _apic.ApicBase && !_apic.WriteMsr(LocalApic.MsrApicBase, apicBase))
        {
            throw new ArgumentException($"vCPU {Id}: IA32_APIC_BASE 0x{state.ApicBase:x} is not a valid value");
        }

        _cpu.SetState(state);
        _apic.TaskPriority = (uint)(state.Cr8 & 0xF) << 4;
        _halted = false;
    }

    /// <summary>INIT state and wait-for-SIPI, CPU and local APIC (call while not running).</summary>
    public void EnterWaitForStartup()
    {
        _apic.EnterWaitForSipi();
        _cpu.EnterInitState();
        _inInitState = true;
        _halted = false;
    }

    /// <summary>
    /// Runs the guest on the calling thread until the machine stops, this vCPU is kicked, or the
    /// guest does something that ends it (triple fault, halting for good, an internal error).
    /// </summary>
    public VcpuExit Run()
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException($"vCPU {Id} is already running on another thread");
        }

        try
        {
            return RunLoop();
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>
    /// Makes the current <see cref="Run"/> — or the next one, if none is in progress — return
    /// <see cref="VcpuExitReason.Stopped"/>: stops the interpreter at its next block boundary and
    /// wakes the thread if it sleeps in HLT or wait-for-SIPI.
    /// </summary>
    public void Kick()
    {
        Volatile.Write(ref _kickPending, 1);
        _cpu.RequestStop();
        _apic.Wake();
    }

    /// <summary>
    /// KVM_HC_KICK_CPU from another vCPU: ends this vCPU's HLT even with interrupts off (Linux's
    /// paravirtual spinlocks halt so and are woken this way); callable from any thread.
    /// </summary>
    internal void PvUnhalt()
    {
        Volatile.Write(ref _pvUnhaltPending, 1);
        _apic.Wake();
    }

    /// <summary>Kicks a running vCPU and waits up to 5 seconds for its thread to leave <see cref="Run"/>.</summary>
    public void Dispose() => StopAndWait(TimeSpan.FromSeconds(5));

    /// <summary>Whether the vCPU's thread is out of <see cref="Run"/> (kicking it first); false after the timeout.</summary>
    internal bool StopAndWait(TimeSpan timeout)
    {
        if (Volatile.Read(ref _running) == 0)
        {
            return true;
        }

        Kick();
        return SpinWait.SpinUntil(() => Volatile.Read(ref _running) == 0, timeout);
    }

    private VcpuExit RunLoop()
    {
        MachineControl control = _vm.Control;
        while (true)
        {
            if (control.IsStopRequested || Volatile.Read(ref _kickPending) != 0)
            {
                return Stopped();
            }

            _platform.PollTimers();
            TakeParavirtualStart();
            if (Volatile.Read(ref _paravirtualDown) != 0)
            {
                // VCPUOP_down: parked until VCPUOP_up (or a kick) wakes the thread.
                _apic.WaitForWakeup(Timeout.InfiniteTimeSpan);
                continue;
            }

            _apic.UpdateTimer();
            TakeApicEvents();
            TakeUpcall();

            if (_apic.IsWaitingForSipi)
            {
                // Application processors from power-on, and any AP after INIT: only a SIPI (or a kick) wakes them.
                _apic.WaitForWakeup(Timeout.InfiniteTimeSpan);
                continue;
            }

            if (_halted && Interlocked.Exchange(ref _pvUnhaltPending, 0) != 0)
            {
                _cpu.WakeFromHalt();
                _halted = false;
            }

            if (_halted)
            {
                if (IsHaltedForever())
                {
                    return ExitWithState(VcpuExitReason.HaltedForever, "HLT with interrupts disabled and nothing that could wake the vCPU (no NMI source, no other vCPU)");
                }

                _apic.WaitForWakeupUntil(_platform.NextDeadlineFor(Id));
                continue;
            }

            VcpuExit? exit = RunSlice();
            if (exit is not null)
            {
                return exit;
            }
        }
    }

    /// <summary>
    /// Adds what this vCPU's MMU counted since the last slice to <see cref="Exits"/> (prefixed
    /// "mmu-"), so the domain's progress lines, `top` and metrics show the paging technique at work.
    /// </summary>
    private void PublishMmuCounters()
    {
        MmuCounters now = _cpu.Mmu.Counters;
        Publish("mmu-walks", now.Walks, ref _publishedMmu.Walks);
        Publish("mmu-shadow-hits", now.ShadowHits, ref _publishedMmu.ShadowHits);
        Publish("mmu-shadow-misses", now.ShadowMisses, ref _publishedMmu.ShadowMisses);
        Publish("mmu-nested-walks", now.NestedWalks, ref _publishedMmu.NestedWalks);
        Publish("mmu-page-faults", now.PageFaults, ref _publishedMmu.PageFaults);
        Publish("mmu-invlpg", now.PageInvalidations, ref _publishedMmu.PageInvalidations);
        Publish("mmu-flushes", now.TlbFlushes, ref _publishedMmu.TlbFlushes);
        Publish("mmu-shadow-invalidations", now.ShadowInvalidations, ref _publishedMmu.ShadowInvalidations);

        // Tier 1: this vCPU's instructions in translated code; the process-wide code cache's
        // figures once, on vCPU 0 (the domain's totals sum the vCPUs).
        Publish("tier1-instructions", _cpu.TranslatedInstructions, ref _publishedTier1Instructions);
        Publish("jump-cache-misses", _cpu.JumpCacheMisses, ref _publishedJumpCacheMisses);
        Publish("blocks-decoded", _cpu.BlocksDecoded, ref _publishedBlocksDecoded);
        if (Id == 0 && _cpu.Tier != ExecutionTier.Interpreter)
        {
            TranslatorStatistics t = X86Cpu.TranslatorStatistics;
            Publish("tier1-compiled-blocks", t.Compiled, ref _publishedTier1.Compiled);
            Publish("tier1-evicted-blocks", t.Evicted, ref _publishedTier1.Evicted);
            Publish("tier1-failed-blocks", t.Failed, ref _publishedTier1.Failed);
            Publish("tier1-cache-blocks", t.Resident, ref _publishedTier1.Resident);
            Publish("tier1-cache-il-bytes", t.IlBytes, ref _publishedTier1.IlBytes);
            Publish("tier1-jit-us", (long)t.JitTime.TotalMicroseconds, ref _publishedTier1.JitMicroseconds);
        }

        if (_cpu.Tier == ExecutionTier.Native)
        {
            Publish("native-instructions", _cpu.NativeInstructions, ref _publishedNativeInstructions);
            if (Id == 0)
            {
                NativeStatistics n = X86Cpu.NativeStatistics;
                Publish("native-compiled-blocks", n.Compiled, ref _publishedNative.Compiled);
                Publish("native-code-bytes", n.CodeBytes, ref _publishedNative.CodeBytes);
                Publish("native-encode-us", (long)n.EncodeTime.TotalMicroseconds, ref _publishedNative.EncodeMicroseconds);
                Publish("native-buffer-resets", n.Resets, ref _publishedNative.Resets);
                Publish("native-failed-blocks", n.Failed, ref _publishedNative.Failed);
            }
        }

        void Publish(string name, long current, ref long published)
        {
            if (current != published)
            {
                Exits.Add(name, current - published);
                published = current;
            }
        }
    }

    /// <summary>Interprets one slice; null means "go round the loop again".</summary>
    private VcpuExit? RunSlice()
    {
        long before = _cpu.InstructionsExecuted;
        _cpu.SyncProtection();
        EnterSlice();
        CpuRunResult result;
        try
        {
            result = _cpu.Run(_windowOpenRequested ? InterruptWindowSliceInstructions : SliceInstructions);
        }
        finally
        {
            Volatile.Write(ref _inSlice, 0);
        }

        Exits.Add("instructions", _cpu.InstructionsExecuted - before);
        if (_cpu.TakeUserModeEntry() && _cpu.Protection is { IsLocked: false } protection)
        {
            // The first entries to user mode: the monitor looks whether boot-time patching is over and locks.
            protection.Monitor.OnUserModeEntered(_cpu.CreateProtectionLockContext(Id));
            _cpu.SyncProtection();
        }

        PublishMmuCounters();
        switch (result.Reason)
        {
            case CpuStopReason.InstructionLimit:
            case CpuStopReason.StopRequested:
            case CpuStopReason.Breakpoint:
            case CpuStopReason.InterruptWindow:
                return null;

            case CpuStopReason.Halted:
                Exits.Increment("hlt");
                _halted = true;
                return null;

            case CpuStopReason.WaitingForStartup:
                // The core waits for a SIPI the local APIC has not announced yet: sleep rather than spin.
                _apic.WaitForWakeup(TimeSpan.FromMilliseconds(1));
                return null;

            case CpuStopReason.TripleFault:
                Exits.Increment("shutdown");
                return ExitWithState(VcpuExitReason.Shutdown, "triple fault: the vCPU shut down");

            case CpuStopReason.Exception:
                Exits.Increment("internal-error");
                return ExitWithState(VcpuExitReason.InternalError, $"guest exception not delivered: {result.Exception?.Message}");

            default:
                return ExitWithState(VcpuExitReason.InternalError, $"unexpected CPU stop reason {result.Reason}");
        }
    }

    /// <summary>Takes what the local APIC has for the CPU, in architectural order, while the CPU can take it.</summary>
    private void TakeApicEvents()
    {
        if (!_apic.HasPendingEvents)
        {
            _windowOpenRequested = false;
            _cpu.InterruptWindowRequested = false;
            return;
        }

        while (true)
        {
            bool interruptsAllowed = !_apic.IsWaitingForSipi && _cpu.CanAcceptInterrupt;
            if (!_apic.TryTakeEvent(nmiAllowed: true, interruptsAllowed, out ApicEvent apicEvent))
            {
                // A maskable interrupt waits for IF (or the end of an interrupt shadow): KVM's interrupt window.
                bool waiting = !interruptsAllowed && !_apic.IsWaitingForSipi && _apic.TryGetPendingInterrupt(out _);
                if (waiting && !_windowOpenRequested)
                {
                    Exits.Increment("irq-window");
                }

                // The CPU returns as soon as IF=1 and no shadow (after STI's shadow, POPF, IRET),
                // so the interrupt is taken at that instruction boundary, not at the slice's end.
                _windowOpenRequested = waiting;
                _cpu.InterruptWindowRequested = waiting;
                return;
            }

            switch (apicEvent.Kind)
            {
                case ApicEventKind.Init:
                    Exits.Increment("init");
                    if (_apic.IsBootProcessor)
                    {
                        // A BSP leaves INIT at the reset vector rather than waiting for a SIPI.
                        _cpu.Reset();
                    }
                    else
                    {
                        _cpu.EnterInitState();
                        _inInitState = true;
                    }

                    _halted = false;
                    break;

                case ApicEventKind.StartUp:
                    Exits.Increment("sipi");
                    EnterInitStateOnce();
                    _cpu.DeliverStartup((byte)apicEvent.Vector);
                    _inInitState = false;
                    _halted = false;
                    break;

                case ApicEventKind.Nmi:
                    Exits.Increment("nmi-injection");
                    _cpu.DeliverNmi();
                    _halted = false;
                    break;

                case ApicEventKind.Interrupt:
                    Exits.Increment("irq-injection");
                    _cpu.DeliverInterrupt((byte)apicEvent.Vector);
                    _halted = false;
                    break;
            }
        }
    }

    /// <summary>
    /// Injects the hypervisor interface's upcall vector (Xen's event-channel callback) straight
    /// into the CPU, not through the local APIC: it is a level the guest lowers by clearing its
    /// pending flag, and needs no EOI. While the CPU cannot take it, the slices get short.
    /// </summary>
    private void TakeUpcall()
    {
        if (_apic.IsWaitingForSipi || !CpuPlatform.TryGetPendingUpcall(out byte vector))
        {
            return;
        }

        if (!_cpu.CanAcceptInterrupt)
        {
            _windowOpenRequested = true;
            return;
        }

        Exits.Increment("upcall-injection");
        _cpu.DeliverInterrupt(vector);
        _halted = false;
    }

    /// <summary>Wakes the vCPU for an upcall: out of HLT, and out of its slice if it runs.</summary>
    internal void WakeForUpcall()
    {
        _cpu.RequestStop();
        _apic.Wake();
    }

    /// <summary>
    /// VCPUOP_up from another vCPU: the first start loads <paramref name="state"/> (the AP leaves
    /// wait-for-SIPI without a SIPI); a later one (null) resumes where <see cref="StopParavirtual"/> parked it.
    /// </summary>
    internal void StartParavirtual(VcpuState? state)
    {
        lock (_paravirtualLock)
        {
            _paravirtualStart = state?.Clone();
            Volatile.Write(ref _paravirtualDown, 0);
        }

        _apic.Wake();
    }

    /// <summary>VCPUOP_down: the vCPU stops at its next block boundary and sleeps until started again.</summary>
    internal void StopParavirtual()
    {
        Volatile.Write(ref _paravirtualDown, 1);
        _cpu.RequestStop();
        _apic.Wake();
    }

    private void TakeParavirtualStart()
    {
        VcpuState? state;
        lock (_paravirtualLock)
        {
            state = _paravirtualStart;
            _paravirtualStart = null;
        }

        if (state is not null)
        {
            _apic.LeaveWaitForSipi();
            SetState(state);
            _inInitState = false;
            Exits.Increment("pv-start");
        }
    }

    /// <summary>
    /// A remote TLB flush asked by <paramref name="caller"/> (on its own thread, inside a hypercall):
    /// the flag is taken when this vCPU next enters a slice; if it is inside one now, it is stopped at
    /// its next block boundary and the caller waits until it has left that slice. While waiting the
    /// caller counts as outside its own slice (so two vCPUs flushing each other do not wait for each
    /// other), and takes a flush asked of it before it goes on.
    /// </summary>
    internal void FlushTlbFrom(EmulatorVcpu? caller, MachineControl control)
    {
        if (ReferenceEquals(caller, this))
        {
            _cpu.FlushTlb();
            return;
        }

        Interlocked.Exchange(ref _tlbFlushPending, 1);      // a full fence before reading _inSlice
        int entries = Volatile.Read(ref _sliceEntries);
        if (Volatile.Read(ref _inSlice) == 0)
        {
            return;
        }

        _cpu.RequestStop();
        if (caller is not null)
        {
            Volatile.Write(ref caller._inSlice, 0);
            Interlocked.MemoryBarrier();
        }

        var spin = default(SpinWait);
        while (Volatile.Read(ref _inSlice) != 0 && Volatile.Read(ref _sliceEntries) == entries && !control.IsStopRequested)
        {
            spin.SpinOnce();
        }

        caller?.EnterSlice();
    }

    /// <summary>Marks the vCPU inside a slice, then takes a remote flush asked before (the Dekker pair of <see cref="FlushTlbFrom"/>).</summary>
    private void EnterSlice()
    {
        Volatile.Write(ref _inSlice, 1);
        Interlocked.Increment(ref _sliceEntries);           // a full fence before reading the flag
        if (Interlocked.Exchange(ref _tlbFlushPending, 0) != 0)
        {
            _cpu.FlushTlb();
            Exits.Increment("remote-tlb-flushes");
        }
    }

    /// <summary>
    /// An AP's CPU enters its INIT state before its first SIPI: at power-on it is in its RESET
    /// state, and a start-up IPI is taken only in wait-for-SIPI. (Until then it never executes.)
    /// </summary>
    private void EnterInitStateOnce()
    {
        if (!_inInitState)
        {
            _cpu.EnterInitState();
            _inInitState = true;
        }
    }

    /// <summary>
    /// HLT with IF=0 on a machine with one vCPU and no NMI or INIT pending: nothing can ever wake
    /// it (NMIs, INITs and SIPIs come from other vCPUs). With more vCPUs the halt is legitimate —
    /// Linux parks CPUs so while another powers the machine off — and the vCPU sleeps.
    /// </summary>
    private bool IsHaltedForever() =>
        _vm.VcpuCount == 1
        && (_cpu.Rflags & RflagsInterruptEnable) == 0
        && !_apic.PendingNmi
        && !_apic.PendingInit;

    private VcpuExit Stopped()
    {
        if (Interlocked.Exchange(ref _kickPending, 0) != 0)
        {
            Exits.Increment("intr");
        }

        return new VcpuExit(Id, VcpuExitReason.Stopped, _vm.Control.StopDetail ?? "kicked");
    }

    private VcpuExit ExitWithState(VcpuExitReason reason, string detail)
    {
        VcpuState state = GetState();
        byte[]? code = GuestCodeReader.Read(_vm.Memory, state, EmulatorCpuModel.PhysicalAddressBits(_vm.CpuModel));
        return new VcpuExit(Id, reason, detail, state, code);
    }

    public string SnapshotTag => $"vcpu{Id}";

    /// <summary>The CPU core, its local APIC and the platform MSRs; call while the vCPU is parked.</summary>
    public void SaveState(SnapshotWriter w)
    {
        _cpu.SaveState(w);
        _apic.SaveState(w);
        CpuPlatform.Msrs.Save(w);
        CpuPlatform.AmdMsrs.Save(w);
        w.Write(_halted);
        w.Write(_inInitState);
        w.Write(Volatile.Read(ref _pvUnhaltPending));
    }

    public void LoadState(SnapshotReader r)
    {
        _cpu.LoadState(r);
        _apic.LoadState(r);
        CpuPlatform.Msrs.Load(r);
        CpuPlatform.AmdMsrs.Load(r);
        _halted = r.ReadBoolean();
        _inInitState = r.ReadBoolean();
        Volatile.Write(ref _pvUnhaltPending, r.ReadInt32() == 0 ? 0 : 1);
        _cpu.RequestEventCheck();
    }
}
