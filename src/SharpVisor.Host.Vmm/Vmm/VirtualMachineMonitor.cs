using SharpVisor.Boot;
using SharpVisor.Boot.Acpi;
using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Virtio;
using SharpVisor.Devices.Legacy;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Kvm;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Security;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// One domain's machine: guest memory, the accelerator's VM and vCPUs, the PC legacy devices
/// and the booted kernel. Built by <see cref="Create"/>; <see cref="Run"/> blocks until the
/// guest stops; <see cref="Pause"/>, <see cref="Resume"/> and <see cref="Stop"/> may be called
/// from other threads meanwhile.
/// </summary>
public sealed partial class VirtualMachineMonitor : IDisposable
{
    private readonly GuestMemory _memory;
    private readonly IVirtualMachine _machine;
    private readonly IReadOnlyList<IVcpu> _vcpus;
    private readonly VirtualMachineRunner _runner;
    private readonly ulong _facsAddress;
    private int _suspending;

    private VirtualMachineMonitor(
        MachineConfiguration configuration,
        AcceleratorSelection accelerator,
        GuestMemory memory,
        IVirtualMachine machine,
        IReadOnlyList<IVcpu> vcpus,
        LegacyPlatform legacy,
        AcpiPmDevice powerManagement,
        PciDeviceManager devices,
        BootResult boot,
        ulong facsAddress)
    {
        Configuration = configuration;
        Accelerator = accelerator;
        _memory = memory;
        _machine = machine;
        _vcpus = vcpus;
        Legacy = legacy;
        PowerManagement = powerManagement;
        Devices = devices;
        Boot = boot;
        _runner = new VirtualMachineRunner(machine, vcpus);
        _facsAddress = facsAddress;
        powerManagement.SuspendToRam = BeginSuspendToRam;
    }

    public MachineConfiguration Configuration { get; }

    public AcceleratorSelection Accelerator { get; }

    public BootResult Boot { get; }

    public LegacyPlatform Legacy { get; }

    /// <summary>The ACPI PM register block (power button, S5 power-off, reset register).</summary>
    public AcpiPmDevice PowerManagement { get; }

    /// <summary>PCI bus 0 behind configuration mechanism #1 at 0xCF8.</summary>
    public PciBus Pci => Devices.Pci;

    /// <summary>The virtio devices on bus 0 (disks, NICs, balloon, console, entropy).</summary>
    public PciDeviceManager Devices { get; }

    /// <summary>The 16550 UART at 0x3F8: attach a console to it for input.</summary>
    public Serial16550 Serial => Legacy.Serial;

    public MachineControl Control => _machine.Control;

    /// <summary>The Xen domain and its back ends under --xen, else null.</summary>
    public XenGuest? Xen { get; private init; }

    /// <summary>The domain's kernel protection under --protect (docs/security.md), else null.</summary>
    public KernelProtector? Protector { get; private init; }

    /// <summary>The accelerator's machine (an EmulatorVirtualMachine exposes the software platform and its time base).</summary>
    public IVirtualMachine Machine => _machine;

    public IReadOnlyList<IVcpu> Vcpus => _vcpus;

    /// <summary>Bytes the guest has sent through the UART (what progress reports look at).</summary>
    public long SerialBytesWritten =>
        Legacy.Serial.TransmittedBytes + (Xen is { } xen ? xen.Console.BytesOut + xen.Domain.Counters["console-io-bytes"] : 0);

    public bool IsPaused => _runner.IsPaused;

    /// <summary>
    /// Builds the machine and loads the kernel. Bad configurations throw one-line errors:
    /// <see cref="ArgumentException"/>, <see cref="BootImageException"/>, KvmUnavailableException.
    /// </summary>
    public static VirtualMachineMonitor Create(MachineConfiguration configuration)
    {
        configuration.Validate();

        // One bounded, never-throwing path for everything the guest can make the machine say.
        var guestLog = new GuestLog(configuration.Log);
        AcceleratorSelection accelerator = configuration.Xen != XenMode.None
            ? AcceleratorSelection.ForXen(configuration.Xen, configuration.Accelerator, configuration.KvmDevicePath, configuration.Mmu, guestLog.Write, configuration.CpuVendor)
            : AcceleratorSelection.Choose(configuration.Accelerator, configuration.KvmDevicePath, configuration.Mmu, guestLog.Write, configuration.CpuVendor);

        GuestMemory memory;
        try
        {
            memory = GuestMemory.CreateRam(configuration.MemorySize);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException($"memory size {configuration.MemorySize >> 20} MiB: {FirstLine(e.Message)}");
        }

        IVirtualMachine? machine = null;
        KernelProtector? protector = null;
        PciDeviceManager? devices = null;
        XenGuest? xen = null;
        var vcpus = new List<IVcpu>();
        try
        {
            var request = new BootRequest(configuration.KernelPath)
            {
                CommandLine = configuration.CommandLine,
                InitrdPath = configuration.InitrdPath,
                ExtraInitrdPaths = configuration.ExtraInitrdPaths,
                Modules = configuration.Modules,
                KernelDecompressor = configuration.KernelDecompressor,

                // The tables written below start with the RSDP (AcpiTables.RsdpAddress).
                AcpiRsdpAddress = AcpiTables.DefaultBaseAddress,

                // An HVM domain boots as a PC; the hypervisor's ring pages stay out of its RAM.
                ReservedRanges = configuration.Xen == XenMode.Hvm ? [(XenGuest.SpecialArea(memory), XenGuest.SpecialPages * 4096UL)] : [],
            };
            SharpVisor.Xen.Pv.PvDomainLayout? pvLayout = null;
            BootResult boot;
            if (configuration.Xen == XenMode.Pv)
            {
                (boot, pvLayout) = XenPvBoot.Load(memory, request, configuration.VcpuCount, new ExitCounters(), guestLog.Write);
            }
            else
            {
                boot = configuration.Xen == XenMode.Pvh
                    ? PvhBoot.Load(memory, request, AcpiTables.DefaultBaseAddress, [(XenGuest.SpecialArea(memory), XenGuest.SpecialPages * 4096UL)])
                    : BootLoader.Load(memory, request);
            }

            machine = accelerator.Accelerator.CreateVirtualMachine(memory, configuration.VcpuCount);
            if (machine is KvmVirtualMachine kvm)
            {
                // What KVM's own emulator cannot run (PVM: XGETBV, INT3, ...) runs in SharpVisor's.
                kvm.InstructionEmulator = new X86InstructionEmulator(memory, kvm.PortIo, kvm.Mmio);
            }

            if (configuration.CpuTemplate is { } template)
            {
                // Before the vCPUs exist: each applies it when it is created.
                if (machine is not SharpVisor.Machine.CpuTemplates.ICpuTemplateMachine templated)
                {
                    throw new NotSupportedException($"CPU templates on {machine.Capabilities.Accelerator} are not implemented");
                }

                templated.CpuTemplate = template;
            }

            if (configuration.Protection is { } policy)
            {
                // Before the vCPUs exist: each vCPU's MMU and CPU enforce the map; devices ask it before DMA.
                KernelImageLayout? layout = policy.Kernel ? KernelImageLayout.Load(configuration.KernelPath) : null;
                protector = new KernelProtector(policy, layout, memory, guestLog.Write);
                if (machine is KvmVirtualMachine kvmMachine)
                {
                    // Read-only slots and the MSR filter; the instruction fallback obeys the same map.
                    kvmMachine.Protection = protector.Map;
                    ((X86InstructionEmulator)kvmMachine.InstructionEmulator!).Protection = protector.Map;
                    if (policy.PinMsrs && !kvmMachine.EnforcesMsrPins)
                    {
                        guestLog.Write("protection: this KVM lacks KVM_CAP_X86_MSR_FILTER: MSR pins are not enforced");
                    }

                    if (policy.PinControlRegisters)
                    {
                        guestLog.Write("protection: on KVM, CR0/CR4 writes never reach SharpVisor: CR pins hold only for instructions its emulator runs (docs/security.md)");
                    }
                }
                else if (machine is SharpVisor.Machine.Protection.IProtectedMachine protectedMachine)
                {
                    protectedMachine.Protection = protector.Map;
                }
                else
                {
                    throw new NotSupportedException($"kernel protection on {machine.Capabilities.Accelerator} is not implemented");
                }
                memory.DeviceWriteGuard = protector.Map;
            }

            if (configuration.Xen != XenMode.None)
            {
                // Before the vCPUs exist: they route CPUID, MSRs and hypercalls to it from their first instruction.
                // Under --xen the disks are Xen vbds (blkback), the NICs vifs (netback) and the balloon
                // Xen's (memory/target), not virtio.
                xen = XenGuest.Attach(machine, configuration.VcpuCount, boot, configuration.SerialOutput, configuration.Log, configuration.Disks, configuration.NetworkInterfaces, configuration.Name, pvLayout, configuration.XenDomainId, configuration.XenLinkDirectory);
                if (configuration.Balloon is { } balloon)
                {
                    xen.SetMemoryTarget((long)(configuration.MemorySize >> 20) - balloon.InitialTargetMib);
                }
            }

            LegacyPlatform legacy = LegacyPlatform.Register(machine, configuration.SerialOutput);

            // ACPI: the PM block (power button, S5, reset) and the tables Linux finds by scanning
            // the BIOS area; PCI bus 0 with the virtio devices, whose INTx routes go into _PRT.
            var powerManagement = new AcpiPmDevice(machine.Control, new InterruptLine(machine.Interrupts, AcpiPmDevice.DefaultSciIrq)) { Log = guestLog };
            machine.PortIo.Register(AcpiPmDevice.DefaultBasePort, AcpiPmDevice.PortCount, powerManagement, "acpi-pm");
            var pciLayout = new PciBusLayout();
            var acpiPlatform = new AcpiPlatform();
            if (configuration.BootTimer is { } bootTimerLog)
            {
                // Firecracker's address, the first page of the MMIO hole: the PCI window (BARs and ACPI's _CRS) starts after it.
                machine.Mmio.Register(BootTimerDevice.Address, BootTimerDevice.Size, new BootTimerDevice(bootTimerLog), "boot-timer");
                ulong pciStart = BootTimerDevice.Address + BootTimerDevice.Size;
                pciLayout = pciLayout with { Mmio32 = new PciWindow(pciStart, PciBusLayout.DefaultMmio32End - pciStart) };
                acpiPlatform = acpiPlatform with { PciMmio32 = ((uint)pciStart, acpiPlatform.PciMmio32.End) };
            }

            devices = PciDeviceManager.Create(machine, xen is null ? configuration : configuration with { Disks = [], NetworkInterfaces = [], Balloon = null }, guestLog, pciLayout);
            if (configuration.Xen == XenMode.Hvm)
            {
                // Before the _PRT is built: the platform device's slot gets its INTx route too.
                xen!.AttachPlatform(machine, devices.Pci);
            }

            // The emulator brings a CMOS RTC (KVM has none in-kernel); the MADT is the same for both.
            bool hasRtc = machine.Capabilities.HasCmosRtc;
            AcpiTables tables = AcpiTables.Build(acpiPlatform with { VcpuCount = configuration.VcpuCount, HasCmosRtc = hasRtc, PciRoutes = devices.AcpiRoutes() });
            if (pvLayout is null)
            {
                // A PV domain has no firmware tables: its memory is all the builder's (machine frames under a P2M).
                tables.WriteTo(memory);
            }
            for (int id = 0; id < configuration.VcpuCount; id++)
            {
                vcpus.Add(machine.CreateVcpu(id));
            }

            vcpus[0].SetState(boot.State);
            return new VirtualMachineMonitor(configuration, accelerator, memory, machine, vcpus, legacy, powerManagement, devices, boot, tables.FacsAddress) { Xen = xen, Protector = protector };
        }
        catch
        {
            foreach (IVcpu vcpu in vcpus)
            {
                vcpu.Dispose();
            }

            xen?.Dispose();
            protector?.Dispose();
            devices?.Dispose();
            machine?.Dispose();
            memory.Dispose();
            throw;
        }
    }

    /// <summary>Runs the guest until it stops (or <paramref name="timeout"/> passes) and says how it ended.</summary>
    public RunOutcome Run(TimeSpan? timeout = null)
    {
        bool stopped = _runner.Run(timeout);
        Legacy.Serial.Output?.Flush();
        MachineControl control = _machine.Control;
        if (!stopped)
        {
            return new RunOutcome(124, MachineStopReason.PowerOff, $"stopped by the {timeout!.Value.TotalSeconds:0.#} s timeout", null);
        }

        MachineStopReason reason = control.StopReason ?? MachineStopReason.PowerOff;
        string? report = reason == MachineStopReason.Crashed ? _runner.FailureExit?.Format() : null;
        return new RunOutcome(control.ExitStatus, reason, control.StopDetail ?? reason.ToString(), report);
    }

    /// <summary>
    /// Parks every vCPU and freezes the virtio devices (<see cref="VirtioDevice.Freeze"/>: no
    /// request in flight, no frame sent or received, guest memory still — what a snapshot and a
    /// migration's last copy need); on the emulator virtual time (TSC, timers, kvmclock) stops too.
    /// </summary>
    public bool Pause(TimeSpan timeout)
    {
        bool paused = _runner.Pause(timeout);
        foreach (AttachedVirtioDevice device in Devices.Devices)
        {
            device.Device.Freeze();
        }

        _machine.PauseTime();
        return paused;
    }

    /// <summary>
    /// Where each vCPU is executing: pauses the guest for an instant (a kick per vCPU), reads
    /// RIP and resumes. Null when the vCPUs could not be parked in time.
    /// </summary>
    public IReadOnlyList<ulong>? SampleInstructionPointers()
    {
        if (_runner.IsPaused)
        {
            return null;
        }

        if (!_runner.Pause(TimeSpan.FromSeconds(1)))
        {
            _runner.Resume();
            return null;
        }

        try
        {
            return _vcpus.Select(v => v.GetState().Rip).ToArray();
        }
        finally
        {
            _runner.Resume();
        }
    }

    public void Resume()
    {
        _machine.ResumeTime();
        foreach (AttachedVirtioDevice device in Devices.Devices)
        {
            device.Device.Thaw();
        }

        _runner.Resume();
    }

    /// <summary>How many times the guest suspended to RAM (S3) and was resumed.</summary>
    public int Resumes { get; private set; }

    /// <summary>
    /// SLP_TYP=S3 with SLP_EN, on the writing vCPU's thread: the vCPUs can only be stopped from
    /// another thread (this one must leave its run call), so the resume runs on one of its own.
    /// </summary>
    private void BeginSuspendToRam()
    {
        if (Interlocked.Exchange(ref _suspending, 1) != 0)
        {
            return;
        }

        // Stop every vCPU now (the writer parks right after this instruction's block), then wait
        // for them and resume on another thread.
        _runner.BeginPause();
        var thread = new Thread(ResumeFromSuspend) { IsBackground = true, Name = "acpi-s3" };
        thread.Start();
    }

    /// <summary>
    /// What firmware does on the wake event of S3: every vCPU is stopped and reset; vCPU 0
    /// starts in real mode at the FACS waking vector (X_Firmware_Waking_Vector when set, else
    /// Firmware_Waking_Vector, as SeaBIOS does), the APs wait for a SIPI; RAM and the devices
    /// are kept; PM1_STS.WAK_STS is set. The machine wakes at once (there is no wake timer or
    /// button to wait for).
    /// </summary>
    private void ResumeFromSuspend()
    {
        try
        {
            if (!_runner.Pause(TimeSpan.FromSeconds(10)))
            {
                if (!_machine.Control.IsStopRequested)
                {
                    _machine.Control.Crash("ACPI S3: the vCPUs did not stop within 10 s");
                }

                return;
            }

            if (_machine.Control.IsStopRequested)
            {
                return;
            }

            ulong vector = _memory.Read<ulong>(_facsAddress + AcpiTables.FacsXWakingVectorOffset);
            if (vector == 0)
            {
                vector = _memory.Read<uint>(_facsAddress + AcpiTables.FacsWakingVectorOffset);
            }

            if (vector >= 0x10_0000)
            {
                _machine.Control.Crash($"ACPI S3: the waking vector 0x{vector:x} is beyond real mode's reach (1 MiB)");
                return;
            }

            for (int i = 1; i < _vcpus.Count; i++)
            {
                _vcpus[i].EnterWaitForStartup();
            }

            _vcpus[0].SetState(VcpuStates.RealMode(_vcpus[0].GetState(), (ushort)(vector >> 4), (ushort)(vector & 0xF)));
            PowerManagement.Wake();
            Resumes++;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or SharpVisor.Interop.LinuxException)
        {
            _machine.Control.Crash($"ACPI S3 resume failed: {e.Message}");
        }
        finally
        {
            Volatile.Write(ref _suspending, 0);
            _runner.Resume();
        }
    }

    /// <summary>Asks the guest to shut down gracefully: an ACPI fixed-feature power-button press.</summary>
    public void PressPowerButton() => PowerManagement.PressPowerButton();

    /// <summary>Stops the guest at once (destroy): its run ends as powered off by the VMM.</summary>
    public void Stop(string detail = "stopped by the VMM") => _machine.Control.Stop(MachineStopReason.PowerOff, 0, detail);

    /// <summary>Exit counts summed over all vCPUs, by reason.</summary>
    public IReadOnlyDictionary<string, long> ExitCounts()
    {
        var totals = new Dictionary<string, long>();
        foreach (IVcpu vcpu in _vcpus)
        {
            foreach ((string reason, long count) in vcpu.Exits.Snapshot())
            {
                totals[reason] = totals.GetValueOrDefault(reason) + count;
            }
        }

        if (Xen is not null)
        {
            // Hypercalls by op, upcalls, event-channel sends: the Xen layer's side of the exits.
            foreach ((string name, long count) in Xen.Domain.Counters.Snapshot())
            {
                totals[$"xen-{name}"] = count;
            }

            // A PV domain's direct paging: page-table updates validated, refused by reason (pv-refused-*), pins.
            foreach ((string name, long count) in Xen.Domain.PvTables?.Counters.Snapshot() ?? new Dictionary<string, long>())
            {
                totals[$"xen-{name}"] = count;
            }

            // blkback's and netback's requests, bytes and errors per device, and the grant copies behind them.
            foreach (XenBackendDevice vbd in Xen.BlockBackends.Concat<XenBackendDevice>(Xen.NetBackends))
            {
                foreach ((string name, long count) in vbd.Counters.Snapshot())
                {
                    totals[$"xen-{vbd.Name}-{name}"] = count;
                }
            }

            foreach ((string name, long count) in Xen.Grants.Counters.Snapshot())
            {
                totals[$"xen-{name}"] = count;
            }

            // XenStore requests over the guest's ring, by type, and the store's conflicts and watch events.
            foreach ((string name, long count) in Xen.Store.Counters.Snapshot())
            {
                totals[$"xen-xenstore-{name}"] = count;
            }
        }

        return totals;
    }

    /// <summary>Asks the guest to hand <paramref name="mib"/> MiB back through its balloon.</summary>
    public void SetBalloonTarget(long mib) => Devices.SetBalloonTarget(mib);

    public void Dispose()
    {
        foreach (IVcpu vcpu in _vcpus)
        {
            vcpu.Dispose();
        }

        // The measurement timer and device workers touch guest memory and the VM's ioeventfds: they go first.
        Protector?.Dispose();
        Devices.Dispose();
        Xen?.Dispose();
        _machine.Dispose();
        _memory.Dispose();
    }

    private static string FirstLine(string message)
    {
        int end = message.IndexOf(" (Parameter", StringComparison.Ordinal);
        return end > 0 ? message[..end] : message;
    }
}
