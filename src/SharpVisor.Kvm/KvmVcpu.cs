using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Kvm;

/// <summary>
/// One KVM vCPU: its fd and mmap'd kvm_run, the CPUID/MSR/FPU/LAPIC setup it starts with,
/// state get/set, and the run loop that dispatches exits to the machine's buses.
/// </summary>
public sealed unsafe class KvmVcpu : IVcpu, ISnapshotable
{
    private const int MaxInstructionBytes = 16;
    private const ulong PageSize = 4096;

    // x87 control word and MXCSR after FNINIT/reset: all exceptions masked.
    private const ushort FpuControlWordDefault = 0x37F;
    private const uint MxcsrDefault = 0x1F80;

    // LVT delivery mode field, bits 10:8.
    private const uint LvtDeliveryModeMask = 0x700;
    private const uint DeliveryModeNmi = 0x4;
    private const uint DeliveryModeExtInt = 0x7;

    private readonly KvmVirtualMachine _vm;
    private readonly int _runSize;

    // Guards _threadId and the kvm_run mapping against Kick racing Run's start/end and Dispose.
    private readonly object _threadLock = new();
    private int _fd;
    private KvmRun* _run;
    private int _threadId;
    private int _kickPending;
    private int _running;

    internal KvmVcpu(KvmVirtualMachine vm, int id)
    {
        _vm = vm;
        Id = id;
        _runSize = vm.System.VcpuMmapSize;

        // Install the kick handler now so a problem with it shows when the machine is built.
        _ = VcpuKickSignal.Number;

        _fd = LibC.Ioctl(vm.Fd, KvmIoctls.CreateVcpu, id);
        if (_fd < 0)
        {
            throw LinuxException.FromLastError($"KVM_CREATE_VCPU {id}");
        }

        try
        {
            nint run = LibC.Mmap(0, (nuint)_runSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, _fd, 0);
            if (run == LibC.MAP_FAILED)
            {
                throw LinuxException.FromLastError($"mmap of kvm_run for vCPU {id}");
            }

            _run = (KvmRun*)run;
            KvmCpuidEntry2[] cpuid = KvmCpuidPolicy.Apply(vm.SupportedCpuid, id, vm.VcpuCount);
            if (vm.Xen is { } xen)
            {
                // Xen's leaves at 0x40000000, KVM's moved to 0x40000100 (QEMU's xen-emu layout).
                cpuid = xen.MergeCpuid(cpuid, id);
            }

            if (vm.CpuTemplate is { } template)
            {
                KvmCpuTemplate.ApplyCpuid(cpuid, template);
            }

            SetCpuid(cpuid);
            Cpuid = GetCpuid(cpuid.Length);
            if (vm.CpuTemplate is { } applied)
            {
                KvmCpuTemplate.CheckApplied(Cpuid, applied);
            }

            UnsupportedBootMsrs = SetBootMsrs();
            if (vm.CpuTemplate is { } msrTemplate)
            {
                ApplyTemplateMsrs(msrTemplate);
            }
            SetUpFpu();
            SetUpLapicLints();
            vm.Xen?.VcpuCreated(this);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Id { get; }

    public ExitCounters Exits { get; } = new();

    /// <summary>
    /// The CPUID table the guest sees on this vCPU, read back from KVM after KVM_SET_CPUID2:
    /// KVM may adjust bits of what <see cref="KvmCpuidPolicy"/> asked for (PVM, for one, adds
    /// host features to leaf 1 ECX).
    /// </summary>
    public IReadOnlyList<KvmCpuidEntry2> Cpuid { get; }

    /// <summary>Boot MSRs (<see cref="KvmBootMsrs"/>) this KVM refused; they keep KVM's reset values.</summary>
    public IReadOnlyList<uint> UnsupportedBootMsrs { get; } = [];

    private int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException($"vCPU {Id}");

    /// <summary>Reads the registers. Blocks while another thread is inside <see cref="Run"/> on this vCPU.</summary>
    public VcpuState GetState()
    {
        KvmRegs regs;
        KvmSregs sregs;
        Ioctl(KvmIoctls.GetRegs, &regs, "KVM_GET_REGS");
        Ioctl(KvmIoctls.GetSregs, &sregs, "KVM_GET_SREGS");
        return KvmStateConversion.ToVcpuState(regs, sregs);
    }

    /// <summary>
    /// Loads the registers. Setting a state means "run from here": an application processor,
    /// which the in-kernel local APIC otherwise parks until the BSP sends INIT/SIPI, is made runnable.
    /// </summary>
    public void SetState(VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        LoadRegisters(state);

        KvmMpState mpState;
        Ioctl(KvmIoctls.GetMpState, &mpState, "KVM_GET_MP_STATE");
        if (mpState.MpState is KvmMpState.Uninitialized or KvmMpState.InitReceived)
        {
            mpState.MpState = KvmMpState.Runnable;
            Ioctl(KvmIoctls.SetMpState, &mpState, "KVM_SET_MP_STATE");
        }
    }

    /// <summary>The INIT state's registers (real mode at F000:FFF0), then KVM_MP_STATE_INIT_RECEIVED: the in-kernel APIC waits for a SIPI.</summary>
    public void EnterWaitForStartup()
    {
        LoadRegisters(VcpuStates.RealMode(GetState(), VcpuStates.InitSegment, VcpuStates.InitOffset));
        var mpState = new KvmMpState { MpState = KvmMpState.InitReceived };
        Ioctl(KvmIoctls.SetMpState, &mpState, "KVM_SET_MP_STATE");
    }

    private void LoadRegisters(VcpuState state)
    {
        KvmSregs sregs;
        Ioctl(KvmIoctls.GetSregs, &sregs, "KVM_GET_SREGS");
        KvmStateConversion.CopyTo(state, ref sregs);
        Ioctl(KvmIoctls.SetSregs, &sregs, "KVM_SET_SREGS");
        KvmRegs regs = KvmStateConversion.ToKvmRegs(state);
        Ioctl(KvmIoctls.SetRegs, &regs, "KVM_SET_REGS");
    }

    /// <summary>KVM_GET_MSRS for the given MSR indices; an MSR KVM does not know makes this throw.</summary>
    public ulong[] ReadMsrs(params uint[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int bytes = sizeof(KvmMsrs) + (indices.Length * sizeof(KvmMsrEntry));
        byte* buffer = stackalloc byte[bytes];
        var header = (KvmMsrs*)buffer;
        *header = new KvmMsrs { NMsrs = (uint)indices.Length };
        var entries = (KvmMsrEntry*)(header + 1);
        for (int i = 0; i < indices.Length; i++)
        {
            entries[i] = new KvmMsrEntry { Index = indices[i] };
        }

        int read = Ioctl(KvmIoctls.GetMsrs, header, "KVM_GET_MSRS");
        if (read != indices.Length)
        {
            throw new InvalidOperationException($"KVM_GET_MSRS on vCPU {Id} stopped at MSR 0x{indices[read]:x}");
        }

        var values = new ulong[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            values[i] = entries[i].Data;
        }

        return values;
    }

    /// <summary>A CPU template's MSRs: each read from KVM, its bits forced, written back (Firecracker's order: after the boot MSRs).</summary>
    private void ApplyTemplateMsrs(SharpVisor.Machine.CpuTemplates.CpuTemplate template)
    {
        foreach (SharpVisor.Machine.CpuTemplates.MsrModifier m in template.Msrs)
        {
            ulong value;
            try
            {
                value = ReadMsrs(m.Index)[0];
            }
            catch (Exception e) when (e is InvalidOperationException or LinuxException)
            {
                throw new InvalidOperationException($"the CPU template sets MSR 0x{m.Index:x}, which this KVM does not have", e);
            }

            ulong templated = m.Bits.Apply(value);
            if (!TryWriteMsr(m.Index, templated))
            {
                throw new InvalidOperationException($"the CPU template sets MSR 0x{m.Index:x} to 0x{templated:x}, which KVM refuses");
            }
        }
    }

    /// <summary>The guest's RIP (KVM_GET_REGS), for reports made on this vCPU's thread during an exit.</summary>
    internal ulong ReadRip()
    {
        KvmRegs regs;
        return LibC.Ioctl(Fd, KvmIoctls.GetRegs, &regs) < 0 ? 0 : regs.Rip;
    }

    /// <summary>KVM_SET_MSRS of one MSR (host-initiated: not subject to the MSR filter); false if KVM refused it.</summary>
    internal bool TryWriteMsr(uint index, ulong value)
    {
        try
        {
            return SetMsrs([new KvmMsrEntry { Index = index, Data = value }]) == 1;
        }
        catch (LinuxException)
        {
            return false;
        }
    }

    /// <summary>KVM_GET_LAPIC: the in-kernel local APIC's register page.</summary>
    public KvmLapicState GetLapic()
    {
        KvmLapicState lapic;
        Ioctl(KvmIoctls.GetLapic, &lapic, "KVM_GET_LAPIC");
        return lapic;
    }

    /// <summary>
    /// Runs the guest on the calling thread until the machine stops, this vCPU is kicked, or the
    /// guest does something that ends it (triple fault, an error KVM or a device cannot get past).
    /// </summary>
    public VcpuExit Run()
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException($"vCPU {Id} is already running on another thread");
        }

        try
        {
            lock (_threadLock)
            {
                ObjectDisposedException.ThrowIf(_run is null, this);
                _threadId = LibC.Gettid();
            }

            try
            {
                return RunLoop();
            }
            finally
            {
                lock (_threadLock)
                {
                    _threadId = 0;
                }
            }
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>
    /// Makes the current <see cref="Run"/> — or the next one, if none is in progress — return
    /// <see cref="VcpuExitReason.Stopped"/>. kvm_run.immediate_exit covers a kick that lands while
    /// the thread is outside KVM_RUN (dispatching an exit, or not yet in Run); the signal covers a
    /// thread inside KVM_RUN, including one blocked in the kernel on HLT.
    /// </summary>
    public void Kick()
    {
        lock (_threadLock)
        {
            if (_run is null)
            {
                return;
            }

            Volatile.Write(ref _kickPending, 1);
            Volatile.Write(ref _run->ImmediateExit, (byte)1);
            if (_threadId != 0)
            {
                VcpuKickSignal.Send(_threadId);
            }
        }
    }

    /// <summary>
    /// Closes the vCPU. kvm_run is never unmapped under a thread inside <see cref="Run"/>: that
    /// thread is kicked and given up to 5 seconds to leave; if it does not (or Dispose is called
    /// from inside Run, by a device), the mapping and fd are left alone rather than risk a crash.
    /// </summary>
    public void Dispose()
    {
        int self = LibC.Gettid();
        for (int attempt = 0; attempt < 500; attempt++)
        {
            lock (_threadLock)
            {
                if (_threadId == 0)
                {
                    if (_run is not null)
                    {
                        LibC.Munmap((nint)_run, (nuint)_runSize);
                        _run = null;
                    }

                    if (_fd >= 0)
                    {
                        LibC.Close(_fd);
                        _fd = -1;
                    }

                    return;
                }

                if (_threadId == self)
                {
                    Kick();
                    return;
                }
            }

            if (attempt == 0)
            {
                Kick();
            }

            Thread.Sleep(10);
        }
    }

    private VcpuExit RunLoop()
    {
        MachineControl control = _vm.Control;
        if (control.IsStopRequested)
        {
            return Stopped();
        }

        KvmProtection? protection = _vm.ProtectionEnforcement;
        KvmXenHypervisor? xen = _vm.Xen;
        while (true)
        {
            if (protection is not null && protection.Sync() is { } protectionFailure)
            {
                return ExitWithState(VcpuExitReason.InternalError, protectionFailure);
            }

            if (xen is not null)
            {
                // Where the guest put its vcpu_info, told to KVM on this thread (a vCPU ioctl).
                try
                {
                    xen.BeforeRun(this);
                }
                catch (LinuxException e)
                {
                    return ExitWithState(VcpuExitReason.InternalError, $"KVM refused a Xen vCPU attribute: {e.Message}");
                }
            }

            if (LibC.Ioctl(_fd, KvmIoctls.Run, 0) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EAGAIN)
                {
                    // An application processor that waited in the kernel for INIT/SIPI was woken by
                    // an APIC event: KVM returns EAGAIN and expects the VMM to run it again (as QEMU does).
                    Exits.Increment("again");
                    if (control.IsStopRequested || Volatile.Read(ref _kickPending) != 0)
                    {
                        return Stopped();
                    }

                    continue;
                }

                if (errno != LibC.EINTR)
                {
                    return ExitWithState(VcpuExitReason.InternalError, $"KVM_RUN failed: {LibC.Strerror(errno)} (errno {errno})");
                }

                // A kick, or some other signal for this thread (e.g. the runtime's own): run again
                // unless a stop or kick is pending.
                Exits.Increment("intr");
                if (control.IsStopRequested || Volatile.Read(ref _kickPending) != 0)
                {
                    return Stopped();
                }

                continue;
            }

            VcpuExit? exit = HandleExit(control);
            if (exit is not null)
            {
                return exit;
            }

            protection?.PollLock(this);
        }
    }

    /// <summary>Handles one exit; null means "enter the guest again".</summary>
    private VcpuExit? HandleExit(MachineControl control)
    {
        KvmExitReason reason = _run->ExitReason;
        switch (reason)
        {
            case KvmExitReason.Io:
                Exits.Increment("io");
                return HandleIo();

            case KvmExitReason.Mmio:
                Exits.Increment("mmio");
                return HandleMmio();

            case KvmExitReason.Hlt:
                // Only without the in-kernel irqchip; with it the vCPU halts inside KVM.
                Exits.Increment("hlt");
                return control.IsStopRequested ? Stopped() : null;

            case KvmExitReason.Intr:
                Exits.Increment("intr");
                return control.IsStopRequested || Volatile.Read(ref _kickPending) != 0 ? Stopped() : null;

            case KvmExitReason.Shutdown:
                Exits.Increment("shutdown");
                return ExitWithState(VcpuExitReason.Shutdown, "triple fault: the vCPU shut down (KVM_EXIT_SHUTDOWN)");

            case KvmExitReason.InternalError:
                if (_run->Internal.Suberror == KvmRunInternal.SuberrorEmulation && _vm.InstructionEmulator is { } emulator)
                {
                    try
                    {
                        return EmulateFailedInstruction(emulator);
                    }
                    catch (LinuxException e)
                    {
                        Exits.Increment("internal-error");
                        return ExitWithState(VcpuExitReason.InternalError, $"{DescribeInternalError()}; moving the state to SharpVisor's emulator failed: {e.Message}");
                    }
                }

                Exits.Increment("internal-error");
                return ExitWithState(VcpuExitReason.InternalError, DescribeInternalError());

            case KvmExitReason.FailEntry:
                Exits.Increment("fail-entry");
                KvmRunFailEntry failEntry = _run->FailEntry;
                return ExitWithState(
                    VcpuExitReason.InternalError,
                    $"KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x{failEntry.HardwareEntryFailureReason:x} on host CPU {failEntry.Cpu}");

            case KvmExitReason.SystemEvent:
                Exits.Increment("system-event");
                return HandleSystemEvent(control);

            case KvmExitReason.Xen when _vm.Xen is { } xen:
                Exits.Increment("xen-hypercall");
                return HandleXenHypercall(xen);

            case KvmExitReason.X86Wrmsr when _vm.ProtectionEnforcement is { } protection:
                // Only pinned MSRs are filtered (KvmProtection); Error = 1 makes KVM inject #GP.
                Exits.Increment("wrmsr");
                _run->Msr.Error = protection.RefusesMsrWrite(this, _run->Msr.Index, _run->Msr.Data) ? (byte)1 : (byte)0;
                return null;

            default:
                Exits.Increment("unknown");
                string name = Enum.IsDefined(reason) ? $" (KVM_EXIT_{SnakeCase(reason.ToString())})" : "";
                return ExitWithState(VcpuExitReason.InternalError, $"unhandled KVM exit reason {(uint)reason}{name}");
        }
    }

    private VcpuExit? HandleIo()
    {
        KvmRunIo io = _run->Io;
        int size = io.Size;
        ulong total = (ulong)size * io.Count;
        if (size is not (1 or 2 or 4) || io.Count == 0 || io.DataOffset > (ulong)_runSize || total > (ulong)_runSize - io.DataOffset)
        {
            return ExitWithState(
                VcpuExitReason.InternalError,
                $"malformed KVM_EXIT_IO: port 0x{io.Port:x} size {size} count {io.Count} data offset {io.DataOffset}");
        }

        // String I/O (rep ins/outs) arrives as Count accesses to the same port, back to back in the data area.
        byte* data = (byte*)_run + io.DataOffset;
        PortIoBus bus = _vm.PortIo;
        try
        {
            for (uint i = 0; i < io.Count; i++)
            {
                var access = new Span<byte>(data + (i * (uint)size), size);
                if (io.Direction == KvmRunIo.DirectionOut)
                {
                    bus.Write(io.Port, access);
                }
                else
                {
                    bus.Read(io.Port, access);
                }
            }
        }
        catch (Exception e)
        {
            string device = bus.Entries.FirstOrDefault(d => io.Port >= d.Base && io.Port - d.Base < d.Size).Name ?? "unassigned";
            return DeviceFailure(e, device, $"port 0x{io.Port:x}");
        }

        return null;
    }

    private VcpuExit? HandleMmio()
    {
        ulong address = _run->Mmio.PhysAddr;
        uint length = _run->Mmio.Len;
        if (length is 0 or > 8)
        {
            return ExitWithState(VcpuExitReason.InternalError, $"malformed KVM_EXIT_MMIO: address 0x{address:x} length {length}");
        }

        var data = new Span<byte>(_run->Mmio.Data, (int)length);
        if (_vm.ProtectionEnforcement is { } protection && protection.TryHandleRamAccess(this, address, data, _run->Mmio.IsWrite != 0))
        {
            return null;
        }

        MmioBus bus = _vm.Mmio;
        try
        {
            if (_run->Mmio.IsWrite != 0)
            {
                bus.Write(address, data);
            }
            else
            {
                bus.Read(address, data);
            }
        }
        catch (Exception e)
        {
            string device = bus.Entries.FirstOrDefault(d => address >= d.Base && address - d.Base < d.Size).Name ?? "unassigned";
            return DeviceFailure(e, device, $"MMIO address 0x{address:x}");
        }

        return null;
    }

    /// <summary>
    /// KVM_EXIT_XEN: a hypercall for the Xen layer, answered on this thread through the same
    /// <see cref="SharpVisor.Machine.Hypervisor.IHypervisorInterface"/> the emulator calls; the result
    /// goes into kvm_run (KVM sets RAX and steps over the instruction on the next KVM_RUN).
    /// </summary>
    private VcpuExit? HandleXenHypercall(KvmXenHypervisor xen)
    {
        KvmRunXen exit = _run->Xen;
        if (exit.Type != KvmRunXen.TypeHcall)
        {
            return ExitWithState(VcpuExitReason.InternalError, $"unhandled KVM_EXIT_XEN type {exit.Type}");
        }

        var access = new KvmXenVcpuAccess(this);
        var context = new KvmXenHypercallContext(Id, exit, access, _vm.Memory);
        try
        {
            xen.Interface.Hypercall(context);
            access.Complete();
            if (access.HaltRequested)
            {
                // SCHEDOP_block: KVM keeps the vCPU halted until an interrupt (the upcall) is pending.
                var halted = new KvmMpState { MpState = KvmMpState.Halted };
                Ioctl(KvmIoctls.SetMpState, &halted, "KVM_SET_MP_STATE");
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return ExitWithState(VcpuExitReason.InternalError, $"Xen hypercall {exit.Input} failed in the host: {e.GetType().Name}: {e.Message}");
        }

        _run->Xen.Result = context.Result;
        return null;
    }

    /// <summary>
    /// Makes a vCPU inside KVM_RUN (or halted in it) come out and go in again, without stopping it:
    /// KVM then re-reads what changed (a pending upcall, queued Xen attributes). A vCPU outside KVM_RUN
    /// sees the change when it enters; from the vCPU's own thread nothing is needed.
    /// </summary>
    internal void Nudge()
    {
        lock (_threadLock)
        {
            int self = LibC.Gettid();
            if (_run is not null && _threadId != 0 && _threadId != self)
            {
                VcpuKickSignal.Send(_threadId);
            }
        }
    }

    internal KvmRegs ReadRegisters()
    {
        KvmRegs regs;
        Ioctl(KvmIoctls.GetRegs, &regs, "KVM_GET_REGS");
        return regs;
    }

    internal void WriteRegisters(KvmRegs regs) => Ioctl(KvmIoctls.SetRegs, &regs, "KVM_SET_REGS");

    /// <summary>KVM_TRANSLATE of a guest-virtual address for a hypercall's buffers (paging off: the address is physical).</summary>
    internal bool TryTranslateForXen(ulong linear, bool write, out ulong physical)
    {
        var translation = new KvmTranslation { LinearAddress = linear };
        if (LibC.Ioctl(Fd, KvmIoctls.Translate, &translation) < 0 || translation.Valid == 0 || (write && translation.Writeable == 0))
        {
            physical = 0;
            return false;
        }

        physical = translation.PhysicalAddress;
        return true;
    }

    internal void SetXenAttribute(KvmXenVcpuAttr attribute, string name) => Ioctl(KvmIoctls.XenVcpuSetAttr, &attribute, name);

    private VcpuExit? HandleSystemEvent(MachineControl control)
    {
        KvmSystemEventType type = _run->SystemEvent.Type;
        switch (type)
        {
            case KvmSystemEventType.Shutdown:
                control.PowerOff("guest powered off (KVM_SYSTEM_EVENT_SHUTDOWN)");
                return Stopped();
            case KvmSystemEventType.Reset:
                control.Reset("guest requested a reset (KVM_SYSTEM_EVENT_RESET)");
                return Stopped();
            case KvmSystemEventType.Crash:
                control.Crash("guest reported a crash (KVM_SYSTEM_EVENT_CRASH)");
                VcpuState? state = TryGetState();
                return new VcpuExit(Id, VcpuExitReason.Stopped, "guest reported a crash (KVM_SYSTEM_EVENT_CRASH)", state, ReadInstructionBytes(state));
            default:
                return ExitWithState(VcpuExitReason.InternalError, $"unhandled KVM system event type {(uint)type}");
        }
    }

    /// <summary>
    /// KVM's emulator gave up on the instruction at RIP: run it in SharpVisor's emulator against this
    /// vCPU's registers, XCR0 and SSE state, load the result back and enter the guest again. Counted
    /// as "emulated-MNEMONIC". When the fallback cannot run it either, the vCPU stops as before.
    /// </summary>
    private VcpuExit? EmulateFailedInstruction(IInstructionEmulator emulator)
    {
        string kvmError = DescribeInternalError();
        KvmRegs regs;
        KvmSregs sregs;
        KvmFpu fpu;
        Ioctl(KvmIoctls.GetRegs, &regs, "KVM_GET_REGS");
        Ioctl(KvmIoctls.GetSregs, &sregs, "KVM_GET_SREGS");
        Ioctl(KvmIoctls.GetFpu, &fpu, "KVM_GET_FPU");
        KvmXcrs xcrs;
        ulong xcr0 = 1;
        bool haveXcrs = LibC.Ioctl(Fd, KvmIoctls.GetXcrs, &xcrs) >= 0 && xcrs.TryGet(0, out xcr0);

        var state = new EmulatedInstructionState(KvmStateConversion.ToVcpuState(regs, sregs))
        {
            Xcr0 = haveXcrs ? xcr0 : 1,
            Mxcsr = fpu.Mxcsr,
        };
        new ReadOnlySpan<byte>(fpu.Xmm, EmulatedInstructionState.XmmBytes).CopyTo(state.Xmm);

        InstructionEmulationResult result;
        try
        {
            result = emulator.EmulateOne(Id, state);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            result = InstructionEmulationResult.Refused("unknown", $"{e.GetType().Name}: {e.Message}");
        }

        if (!result.Completed)
        {
            Exits.Increment("internal-error");
            return ExitWithState(VcpuExitReason.InternalError, $"{kvmError}; SharpVisor's emulator did not run it ({result.Mnemonic}): {result.Failure}");
        }

        KvmStateConversion.CopyTo(state.Registers, ref sregs);
        Ioctl(KvmIoctls.SetSregs, &sregs, "KVM_SET_SREGS");
        regs = KvmStateConversion.ToKvmRegs(state.Registers);
        Ioctl(KvmIoctls.SetRegs, &regs, "KVM_SET_REGS");
        var xmm = new Span<byte>(fpu.Xmm, EmulatedInstructionState.XmmBytes);
        if (fpu.Mxcsr != state.Mxcsr || !xmm.SequenceEqual(state.Xmm))
        {
            fpu.Mxcsr = state.Mxcsr;
            state.Xmm.CopyTo(xmm);
            Ioctl(KvmIoctls.SetFpu, &fpu, "KVM_SET_FPU");
        }

        if (state.Xcr0 != (haveXcrs ? xcr0 : 1))
        {
            KvmXcrs update = KvmXcrs.Single(0, state.Xcr0);
            Ioctl(KvmIoctls.SetXcrs, &update, "KVM_SET_XCRS");
        }

        Exits.Increment("emulated-" + result.Mnemonic);
        return null;
    }

    /// <summary>KVM_GET_XCRS: the vCPU's XCR0 (the XSAVE feature mask).</summary>
    public ulong GetXcr0()
    {
        KvmXcrs xcrs;
        Ioctl(KvmIoctls.GetXcrs, &xcrs, "KVM_GET_XCRS");
        return xcrs.TryGet(0, out ulong value) ? value : throw new InvalidOperationException($"KVM_GET_XCRS on vCPU {Id} reported no XCR0");
    }

    private string DescribeInternalError()
    {
        uint suberror = _run->Internal.Suberror;
        uint count = Math.Min(_run->Internal.NData, KvmRunInternal.MaxData);
        string what = suberror switch
        {
            KvmRunInternal.SuberrorEmulation => "instruction emulation failed",
            KvmRunInternal.SuberrorSimultaneousException => "exception while delivering an exception",
            KvmRunInternal.SuberrorDeliveryEvent => "exit while delivering an event",
            KvmRunInternal.SuberrorUnexpectedExitReason => "unexpected exit reason",
            _ => "unknown",
        };
        var words = new string[count];
        for (int i = 0; i < count; i++)
        {
            words[i] = $"0x{_run->Internal.Data[i]:x}";
        }

        string data = count > 0 ? $", data [{string.Join(", ", words)}]" : "";
        return $"KVM internal error, suberror {suberror} ({what}){data}";
    }

    private VcpuExit Stopped()
    {
        lock (_threadLock)
        {
            Volatile.Write(ref _kickPending, 0);
            Volatile.Write(ref _run->ImmediateExit, (byte)0);
        }

        return new VcpuExit(Id, VcpuExitReason.Stopped, _vm.Control.StopDetail ?? "kicked");
    }

    private VcpuExit DeviceFailure(Exception e, string device, string where) =>
        ExitWithState(VcpuExitReason.InternalError, $"device {device} failed at {where}: {e.GetType().Name}: {e.Message}");

    private VcpuExit ExitWithState(VcpuExitReason reason, string detail)
    {
        VcpuState? state = TryGetState();
        return new VcpuExit(Id, reason, detail, state, ReadInstructionBytes(state));
    }

    private VcpuState? TryGetState()
    {
        try
        {
            return GetState();
        }
        catch (LinuxException)
        {
            return null;
        }
    }

    /// <summary>Up to 16 bytes at CS:RIP for crash reports; stops at the first page it cannot translate or read.</summary>
    private byte[]? ReadInstructionBytes(VcpuState? state)
    {
        if (state is null)
        {
            return null;
        }

        bool longMode = (state.Efer & VcpuState.EferLongModeActive) != 0 && state.Cs.Long;
        ulong linear = longMode ? state.Rip : (state.Cs.Base + state.Rip) & 0xFFFF_FFFF;
        var bytes = new List<byte>(MaxInstructionBytes);
        while (bytes.Count < MaxInstructionBytes)
        {
            int chunk = (int)Math.Min((ulong)(MaxInstructionBytes - bytes.Count), PageSize - (linear & (PageSize - 1)));
            if (!TryTranslate(state, linear, out ulong physical) || !_vm.Memory.TryGetSpan(physical, chunk, out Span<byte> span))
            {
                break;
            }

            bytes.AddRange(span);
            linear += (ulong)chunk;
        }

        return bytes.Count > 0 ? bytes.ToArray() : null;
    }

    private bool TryTranslate(VcpuState state, ulong linear, out ulong physical)
    {
        if ((state.Cr0 & VcpuState.Cr0Paging) == 0)
        {
            physical = linear & 0xFFFF_FFFF;
            return true;
        }

        var translation = new KvmTranslation { LinearAddress = linear };
        if (LibC.Ioctl(_fd, KvmIoctls.Translate, &translation) < 0 || translation.Valid == 0)
        {
            physical = 0;
            return false;
        }

        physical = translation.PhysicalAddress;
        return true;
    }

    private void SetCpuid(IReadOnlyList<KvmCpuidEntry2> entries)
    {
        nuint bytes = (nuint)(sizeof(KvmCpuid2) + (entries.Count * sizeof(KvmCpuidEntry2)));
        var header = (KvmCpuid2*)NativeMemory.AllocZeroed(bytes);
        try
        {
            header->NEnt = (uint)entries.Count;
            var target = (KvmCpuidEntry2*)(header + 1);
            for (int i = 0; i < entries.Count; i++)
            {
                target[i] = entries[i];
            }

            Ioctl(KvmIoctls.SetCpuid2, header, "KVM_SET_CPUID2");
        }
        finally
        {
            NativeMemory.Free(header);
        }
    }

    private KvmCpuidEntry2[] GetCpuid(int count)
    {
        nuint bytes = (nuint)(sizeof(KvmCpuid2) + (count * sizeof(KvmCpuidEntry2)));
        var header = (KvmCpuid2*)NativeMemory.AllocZeroed(bytes);
        try
        {
            header->NEnt = (uint)count;
            Ioctl(KvmIoctls.GetCpuid2, header, "KVM_GET_CPUID2");
            int returned = (int)Math.Min(header->NEnt, (uint)count);
            return new ReadOnlySpan<KvmCpuidEntry2>(header + 1, returned).ToArray();
        }
        finally
        {
            NativeMemory.Free(header);
        }
    }

    /// <summary>
    /// Sets <see cref="KvmBootMsrs"/>. KVM_SET_MSRS stops at the first MSR it rejects and returns how
    /// many it set, so a rejected one is noted and skipped and the rest are set.
    /// </summary>
    private uint[] SetBootMsrs()
    {
        var pending = new List<KvmMsrEntry>(KvmBootMsrs.Entries);
        var rejected = new List<uint>();
        while (pending.Count > 0)
        {
            int set = SetMsrs(pending);
            if (set >= pending.Count)
            {
                break;
            }

            rejected.Add(pending[set].Index);
            pending.RemoveRange(0, set + 1);
        }

        return rejected.ToArray();
    }

    private int SetMsrs(List<KvmMsrEntry> entries)
    {
        int bytes = sizeof(KvmMsrs) + (entries.Count * sizeof(KvmMsrEntry));
        byte* buffer = stackalloc byte[bytes];
        var header = (KvmMsrs*)buffer;
        *header = new KvmMsrs { NMsrs = (uint)entries.Count };
        var target = (KvmMsrEntry*)(header + 1);
        for (int i = 0; i < entries.Count; i++)
        {
            target[i] = entries[i];
        }

        return Ioctl(KvmIoctls.SetMsrs, header, "KVM_SET_MSRS");
    }

    private void SetUpFpu()
    {
        KvmFpu fpu;
        Ioctl(KvmIoctls.GetFpu, &fpu, "KVM_GET_FPU");
        fpu.Fcw = FpuControlWordDefault;
        fpu.Mxcsr = MxcsrDefault;
        Ioctl(KvmIoctls.SetFpu, &fpu, "KVM_SET_FPU");
    }

    /// <summary>
    /// LINT0 = ExtINT so the 8259 PIC's interrupts reach the CPU through the local APIC (the
    /// "virtual wire" a BIOS sets up), LINT1 = NMI. Without this, legacy PIC interrupts are lost.
    /// </summary>
    private void SetUpLapicLints()
    {
        KvmLapicState lapic;
        Ioctl(KvmIoctls.GetLapic, &lapic, "KVM_GET_LAPIC");
        var registers = new Span<byte>(lapic.Regs, KvmLapicState.Size);
        SetDeliveryMode(registers, KvmLapicState.LvtLint0Offset, DeliveryModeExtInt);
        SetDeliveryMode(registers, KvmLapicState.LvtLint1Offset, DeliveryModeNmi);
        Ioctl(KvmIoctls.SetLapic, &lapic, "KVM_SET_LAPIC");
    }

    private static void SetDeliveryMode(Span<byte> registers, int offset, uint mode)
    {
        Span<byte> register = registers.Slice(offset, 4);
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(register);
        BinaryPrimitives.WriteUInt32LittleEndian(register, (value & ~LvtDeliveryModeMask) | (mode << 8));
    }

    /// <summary>"IrqWindowOpen" → "IRQ_WINDOW_OPEN", the way &lt;linux/kvm.h&gt; spells it.</summary>
    private static string SnakeCase(string name) => Regex.Replace(name, "(?<=[a-z0-9])(?=[A-Z])", "_").ToUpperInvariant();

    private int Ioctl(nuint request, void* argument, string name)
    {
        int result = LibC.Ioctl(Fd, request, argument);
        if (result < 0)
        {
            throw LinuxException.FromLastError($"{name} on vCPU {Id}");
        }

        return result;
    }

    /// <summary>MSRs a snapshot carries beyond what SREGS/XSAVE/LAPIC hold; the ones this KVM does not know are left out.</summary>
    private static readonly uint[] s_snapshotMsrs =
    [
        0x10, 0x3B, 0x174, 0x175, 0x176, 0x1A0, 0x277, 0x2FF, 0x6E0,
        0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084, 0xC000_0102, 0xC000_0103,
        0x4B56_4D00, 0x4B56_4D01, 0x4B56_4D02, 0x4B56_4D03, 0x4B56_4D04,
    ];

    public string SnapshotTag => $"vcpu{Id}";

    /// <summary>
    /// KVM_GET_REGS, SREGS, FPU, XSAVE, XCRS, MSRS, LAPIC, VCPU_EVENTS and MP_STATE as KVM's own
    /// structures (the snapshot is only loaded on the same CPU model and KVM ABI).
    /// </summary>
    public void SaveState(SnapshotWriter w)
    {
        WriteStruct<KvmRegs>(w, KvmIoctls.GetRegs, "KVM_GET_REGS");
        WriteStruct<KvmSregs>(w, KvmIoctls.GetSregs, "KVM_GET_SREGS");
        WriteStruct<KvmFpu>(w, KvmIoctls.GetFpu, "KVM_GET_FPU");
        WriteStruct<KvmXsave>(w, KvmIoctls.GetXsave, "KVM_GET_XSAVE");
        WriteStruct<KvmXcrs>(w, KvmIoctls.GetXcrs, "KVM_GET_XCRS");
        uint[] msrs = KnownMsrs();
        w.Write(msrs);
        w.Write(ReadMsrs(msrs));
        WriteStruct<KvmLapicState>(w, KvmIoctls.GetLapic, "KVM_GET_LAPIC");
        WriteStruct<KvmVcpuEvents>(w, KvmIoctls.GetVcpuEvents, "KVM_GET_VCPU_EVENTS");
        WriteStruct<KvmMpState>(w, KvmIoctls.GetMpState, "KVM_GET_MP_STATE");
    }

    public void LoadState(SnapshotReader r)
    {
        KvmRegs regs = ReadStruct<KvmRegs>(r);
        KvmSregs sregs = ReadStruct<KvmSregs>(r);
        KvmFpu fpu = ReadStruct<KvmFpu>(r);
        KvmXsave xsave = ReadStruct<KvmXsave>(r);
        KvmXcrs xcrs = ReadStruct<KvmXcrs>(r);
        int count = r.ReadInt32();
        if (count is < 0 or > 64)
        {
            throw r.Invalid($"{count} MSRs");
        }

        var indices = new uint[count];
        for (int i = 0; i < count; i++)
        {
            indices[i] = r.ReadUInt32();
        }

        ulong[] values = r.ReadUInt64Array(indices.Length);
        KvmLapicState lapic = ReadStruct<KvmLapicState>(r);
        KvmVcpuEvents events = ReadStruct<KvmVcpuEvents>(r);
        KvmMpState mpState = ReadStruct<KvmMpState>(r);

        Ioctl(KvmIoctls.SetSregs, &sregs, "KVM_SET_SREGS");
        Ioctl(KvmIoctls.SetRegs, &regs, "KVM_SET_REGS");
        Ioctl(KvmIoctls.SetFpu, &fpu, "KVM_SET_FPU");
        Ioctl(KvmIoctls.SetXsave, &xsave, "KVM_SET_XSAVE");
        Ioctl(KvmIoctls.SetXcrs, &xcrs, "KVM_SET_XCRS");
        WriteMsrs(indices, values);
        Ioctl(KvmIoctls.SetLapic, &lapic, "KVM_SET_LAPIC");
        Ioctl(KvmIoctls.SetVcpuEvents, &events, "KVM_SET_VCPU_EVENTS");
        Ioctl(KvmIoctls.SetMpState, &mpState, "KVM_SET_MP_STATE");
    }

    /// <summary>The snapshot MSRs KVM_GET_MSRS reads here (it stops at the first it does not know).</summary>
    private uint[] KnownMsrs()
    {
        var known = new List<uint>();
        byte* buffer = stackalloc byte[sizeof(KvmMsrs) + sizeof(KvmMsrEntry)];
        foreach (uint msr in s_snapshotMsrs)
        {
            var msrs = (KvmMsrs*)buffer;
            *msrs = new KvmMsrs { NMsrs = 1 };
            ((KvmMsrEntry*)(msrs + 1))->Index = msr;
            if (LibC.Ioctl(Fd, KvmIoctls.GetMsrs, msrs) == 1)
            {
                known.Add(msr);
            }
        }

        return known.ToArray();
    }

    private void WriteMsrs(uint[] indices, ulong[] values)
    {
        int bytes = sizeof(KvmMsrs) + (indices.Length * sizeof(KvmMsrEntry));
        byte* buffer = stackalloc byte[bytes];
        var header = (KvmMsrs*)buffer;
        *header = new KvmMsrs { NMsrs = (uint)indices.Length };
        var entries = (KvmMsrEntry*)(header + 1);
        for (int i = 0; i < indices.Length; i++)
        {
            entries[i] = new KvmMsrEntry { Index = indices[i], Data = values[i] };
        }

        int written = Ioctl(KvmIoctls.SetMsrs, header, "KVM_SET_MSRS");
        if (written != indices.Length)
        {
            throw new SnapshotException($"KVM_SET_MSRS on vCPU {Id} refused MSR 0x{indices[written]:x}");
        }
    }

    private void WriteStruct<T>(SnapshotWriter w, nuint request, string name)
        where T : unmanaged
    {
        T value;
        Ioctl(request, &value, name);
        w.WriteBytes(new ReadOnlySpan<byte>(&value, sizeof(T)));
    }

    private static T ReadStruct<T>(SnapshotReader r)
        where T : unmanaged
    {
        byte[] bytes = r.ReadBytes(sizeof(T));
        return System.Runtime.InteropServices.MemoryMarshal.Read<T>(bytes);
    }
}
