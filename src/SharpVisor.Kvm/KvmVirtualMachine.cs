using SharpVisor.Machine.Snapshots;
using System.Runtime.InteropServices;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;

namespace SharpVisor.Kvm;

/// <summary>
/// A KVM virtual machine: one memory slot per guest memory region, the in-kernel irqchip
/// (PIC + I/O APIC + local APICs) and PIT, the I/O buses that exits are dispatched to, and
/// irqfd/ioeventfd registration for device data paths that bypass user space.
/// </summary>
public sealed unsafe class KvmVirtualMachine : IVirtualMachine, IHypervisorInterfaceHost, IIoEventFdRegistry, ISnapshotable, IDirtyPageTracking, ISnapshotableMachine, SharpVisor.Machine.Protection.IProtectedMachine, SharpVisor.Machine.CpuTemplates.ICpuTemplateMachine
{
    /// <summary>
    /// The page KVM uses for the identity-mapped page table it needs to run real-mode and
    /// unpaged code on Intel CPUs without unrestricted guest. Like Firecracker, just below the
    /// 256 KiB BIOS window under 4 GiB: inside the 32-bit MMIO hole, clear of the I/O APIC
    /// (0xFEC00000) and local APIC (0xFEE00000) and of anything a guest sees as RAM. Boot code
    /// should mark [IdentityMapAddress, TssAddress + TssSize) reserved in the e820 map.
    /// </summary>
    public const ulong IdentityMapAddress = 0xFFFB_C000;

    /// <summary>The three pages of the real-mode TSS KVM needs on Intel (KVM_SET_TSS_ADDR), right after the identity map.</summary>
    public const ulong TssAddress = 0xFFFB_D000;

    public const ulong TssSize = 3 * 4096;

    private readonly KvmSystem _system;
    private readonly bool _ownsSystem;
    private readonly KvmVcpu?[] _vcpus;
    private readonly object _vcpuLock = new();
    private int _fd;
    private readonly object _dirtyLogLock = new();
    private bool _logDirtyPages;
    private int _nextSlot;

    private KvmVirtualMachine(KvmSystem system, bool ownsSystem, GuestMemory memory, int vcpuCount)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        _system = system;
        _ownsSystem = ownsSystem;
        Memory = memory;
        VcpuCount = vcpuCount;
        _vcpus = new KvmVcpu?[vcpuCount];
        Interrupts = new KvmInterruptController(this);
        MappedRegions = memory.Regions.ToArray();
        _nextSlot = MappedRegions.Count;

        // A stop request (power-off, debug exit, crash) ends every vCPU's Run, with or without a runner.
        Control.OnStop(KickAll);
        _fd = system.CreateVmFd();
        try
        {
            CheckCapabilities();
            SetUpSystemAreas();
            SetUpIrqchip();
            MapMemory();

            // Regions added while the guest runs (a Xen grant frame in the platform device's BAR) get slots of their own.
            memory.RegionAdded += MapAddedRegion;
            SupportedCpuid = system.GetSupportedCpuid();
            GsiRouting = new KvmGsiRouting(this);
        }
        catch
        {
            memory.RegionAdded -= MapAddedRegion;
            LibC.Close(_fd);
            _fd = -1;
            throw;
        }
    }

    /// <summary>Creates a VM over <paramref name="memory"/>, opening the KVM device itself.</summary>
    public static KvmVirtualMachine Create(GuestMemory memory, int vcpuCount, string devicePath = KvmSystem.DefaultDevicePath)
    {
        KvmSystem system = KvmSystem.Open(devicePath);
        try
        {
            return new KvmVirtualMachine(system, ownsSystem: true, memory, vcpuCount);
        }
        catch
        {
            system.Dispose();
            throw;
        }
    }

    /// <summary>Creates a VM on an already open KVM device (not owned by the VM).</summary>
    public static KvmVirtualMachine Create(KvmSystem system, GuestMemory memory, int vcpuCount) =>
        new(system, ownsSystem: false, memory, vcpuCount);

    public GuestMemory Memory { get; }

    public PortIoBus PortIo { get; } = new();

    public MmioBus Mmio { get; } = new();

    public IInterruptController Interrupts { get; }

    public MachineControl Control { get; } = new();

    /// <summary>
    /// Runs an instruction KVM could not emulate (KVM_INTERNAL_ERROR_EMULATION), so the guest goes
    /// on instead of stopping; null: such an instruction stops the vCPU. Set before the vCPUs run.
    /// </summary>
    public IInstructionEmulator? InstructionEmulator { get; set; }

    /// <summary>
    /// Null: the kernel answers KVM's hypercall ABI itself and no hypercall reaches user space.
    /// A handler set here is kept for the exits that pass hypercalls up (none are enabled yet).
    /// </summary>
    public IHypercallHandler? Hypercalls { get; set; }

    public int VcpuCount { get; }

    /// <summary>The CPU template each vCPU applies (after KVM's CPUID policy and the boot MSRs); set before the vCPUs are created.</summary>
    public SharpVisor.Machine.CpuTemplates.CpuTemplate? CpuTemplate { get; set; }

    /// <summary>
    /// Kernel protection (docs/security.md): null, or the map this VM enforces with read-only slots
    /// and an MSR filter once it locks. Set before the vCPUs run; needs KVM_CAP_READONLY_MEM.
    /// </summary>
    public SharpVisor.Machine.Protection.ProtectionMap? Protection
    {
        get => ProtectionEnforcement?.Map;
        set => ProtectionEnforcement = value is null ? null : new KvmProtection(this, value);
    }

    /// <summary>Whether pinned MSR writes exit to SharpVisor here (KVM_CAP_X86_MSR_FILTER); false without <see cref="Protection"/>.</summary>
    public bool EnforcesMsrPins => ProtectionEnforcement?.MsrPinsEnforced ?? false;

    internal KvmProtection? ProtectionEnforcement { get; private set; }

    public KvmSystem System => _system;

    /// <summary>What KVM_GET_SUPPORTED_CPUID reported; each vCPU applies <see cref="KvmCpuidPolicy"/> to it.</summary>
    public IReadOnlyList<KvmCpuidEntry2> SupportedCpuid { get; }

    /// <summary>MSI messages routed through irqfds right now (each MSI-X vector in use gets one).</summary>
    public int MsiRouteCount => GsiRouting.MsiRouteCount;

    /// <summary>MSI routes for irqfds (<see cref="KvmInterruptController"/> hands them out).</summary>
    internal KvmGsiRouting GsiRouting { get; } = null!;

    internal int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(KvmVirtualMachine));

    /// <summary>
    /// SharpVisor's Xen layer on KVM's Xen support (<see cref="KvmXenHypervisor"/>), or null. Attached
    /// with <see cref="AttachHypervisorInterface"/> before the vCPUs are created.
    /// </summary>
    public KvmXenHypervisor? Xen { get; private set; }

    /// <summary>
    /// Makes <paramref name="hypervisor"/> (a Xen domain: KVM's support is Xen's) this VM's: KVM_XEN_HVM_CONFIG
    /// and the vCPUs' CPUID leaves. Throws <see cref="KvmUnavailableException"/> when KVM_CAP_XEN_HVM
    /// lacks a flag SharpVisor needs (<see cref="KvmXenSupport.RequiredFlags"/>).
    /// </summary>
    public void AttachHypervisorInterface(IHypervisorInterface hypervisor)
    {
        ArgumentNullException.ThrowIfNull(hypervisor);
        lock (_vcpuLock)
        {
            if (Xen is not null || _vcpus.Any(v => v is not null))
            {
                throw new InvalidOperationException("a hypervisor interface is attached once, before the vCPUs are created");
            }

            Xen = KvmXenHypervisor.Create(this, hypervisor);
        }
    }

    /// <summary>vCPU <paramref name="id"/> if it exists yet.</summary>
    internal KvmVcpu? Vcpu(int id)
    {
        lock (_vcpuLock)
        {
            return (uint)id < (uint)_vcpus.Length ? _vcpus[id] : null;
        }
    }

    public IVcpu CreateVcpu(int id)
    {
        if (id < 0 || id >= VcpuCount)
        {
            throw new ArgumentOutOfRangeException(nameof(id), $"vCPU id {id} is outside 0..{VcpuCount - 1}");
        }

        lock (_vcpuLock)
        {
            if (_vcpus[id] is not null)
            {
                throw new InvalidOperationException($"vCPU {id} already exists");
            }

            var vcpu = new KvmVcpu(this, id);
            _vcpus[id] = vcpu;
            return vcpu;
        }
    }

    /// <summary>KVM_IRQFD: signalling <paramref name="eventFd"/> raises GSI <paramref name="gsi"/> (edge) in the kernel, with no exit.</summary>
    public void RegisterIrqFd(EventFd eventFd, uint gsi) => IrqFd(eventFd, gsi, 0);

    public void UnregisterIrqFd(EventFd eventFd, uint gsi) => IrqFd(eventFd, gsi, KvmIrqfd.FlagDeassign);

    /// <summary>
    /// KVM_IOEVENTFD: a guest write of <paramref name="length"/> bytes to <paramref name="address"/>
    /// (a port when <paramref name="isPio"/>) signals <paramref name="eventFd"/> inside the kernel
    /// instead of exiting — optionally only when the written value equals <paramref name="datamatch"/>.
    /// </summary>
    public void RegisterIoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch = null) =>
        IoEventFd(eventFd, address, length, isPio, datamatch, 0);

    public void UnregisterIoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch = null) =>
        IoEventFd(eventFd, address, length, isPio, datamatch, KvmIoeventfd.FlagDeassign);

    public void Dispose()
    {
        Memory.RegionAdded -= MapAddedRegion;
        lock (_vcpuLock)
        {
            foreach (KvmVcpu? vcpu in _vcpus)
            {
                vcpu?.Dispose();
            }
        }

        GsiRouting?.Dispose();
        if (_fd >= 0)
        {
            LibC.Close(_fd);
            _fd = -1;
        }

        if (_ownsSystem)
        {
            _system.Dispose();
        }
    }

    private void KickAll()
    {
        KvmVcpu?[] vcpus;
        lock (_vcpuLock)
        {
            vcpus = (KvmVcpu?[])_vcpus.Clone();
        }

        foreach (KvmVcpu? vcpu in vcpus)
        {
            vcpu?.Kick();
        }
    }

    private void CheckCapabilities()
    {
        (KvmCapability Capability, string Use)[] required =
        [
            (KvmCapability.UserMemory, "memory slots"),
            (KvmCapability.SetTssAddr, "KVM_SET_TSS_ADDR"),
            (KvmCapability.SetIdentityMapAddr, "KVM_SET_IDENTITY_MAP_ADDR"),
            (KvmCapability.Irqchip, "the in-kernel irqchip"),
            (KvmCapability.Pit2, "the in-kernel PIT"),
            (KvmCapability.ImmediateExit, "kicking vCPUs (immediate_exit)"),
            (KvmCapability.ExtCpuid, "KVM_GET_SUPPORTED_CPUID"),
        ];
        foreach ((KvmCapability capability, string use) in required)
        {
            if (_system.CheckExtension(capability) == 0)
            {
                throw new KvmUnavailableException($"{_system.DevicePath} lacks KVM_CAP_{capability} ({use})");
            }
        }

        int maxVcpus = _system.CheckExtension(KvmCapability.MaxVcpus);
        if (maxVcpus == 0)
        {
            maxVcpus = _system.CheckExtension(KvmCapability.NrVcpus);
        }

        // xAPIC ids are 8 bits and 0xFF is broadcast.
        int limit = Math.Min(maxVcpus, 255);
        if (VcpuCount > limit)
        {
            throw new ArgumentOutOfRangeException("vcpuCount", $"{VcpuCount} vCPUs requested; KVM here supports 1..{limit}");
        }

        if (Memory.Regions.Any(r => r.ReadOnly) && _system.CheckExtension(KvmCapability.ReadonlyMem) == 0)
        {
            throw new KvmUnavailableException($"{_system.DevicePath} lacks KVM_CAP_READONLY_MEM, needed for read-only guest memory");
        }
    }

    private void SetUpSystemAreas()
    {
        ulong start = IdentityMapAddress;
        ulong end = TssAddress + TssSize;
        foreach (MemoryRegion region in Memory.Regions)
        {
            if (region.GuestPhysicalAddress < end && start < region.End)
            {
                throw new ArgumentException(
                    $"guest memory 0x{region.GuestPhysicalAddress:x}+0x{region.Size:x} overlaps KVM's identity map/TSS at 0x{start:x}-0x{end:x}");
            }
        }

        // The identity map must be set before any vCPU exists.
        ulong identityMap = IdentityMapAddress;
        if (LibC.Ioctl(_fd, KvmIoctls.SetIdentityMapAddr, &identityMap) < 0)
        {
            throw LinuxException.FromLastError("KVM_SET_IDENTITY_MAP_ADDR");
        }

        if (LibC.Ioctl(_fd, KvmIoctls.SetTssAddr, unchecked((nint)TssAddress)) < 0)
        {
            throw LinuxException.FromLastError("KVM_SET_TSS_ADDR");
        }
    }

    private void SetUpIrqchip()
    {
        // PIC pair + I/O APIC in the kernel, with the default routing of GSIs 0-23; local APICs per vCPU.
        if (LibC.Ioctl(_fd, KvmIoctls.CreateIrqchip, 0) < 0)
        {
            throw LinuxException.FromLastError("KVM_CREATE_IRQCHIP");
        }

        // The PIT on GSI 0, with the "dummy speaker" so port 0x61 (PIT channel 2 gate, used by
        // Linux to calibrate the TSC) is handled in the kernel too.
        var pit = new KvmPitConfig { Flags = KvmPitConfig.SpeakerDummy };
        if (LibC.Ioctl(_fd, KvmIoctls.CreatePit2, &pit) < 0)
        {
            throw LinuxException.FromLastError("KVM_CREATE_PIT2");
        }
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG of every RAM slot merged into the memory's dirty log (device DMA marks it
    /// directly), then fetched. The first call switches KVM_MEM_LOG_DIRTY_PAGES on (KVM then
    /// write-protects the guest's pages, which costs while it runs, so not before a snapshot or a
    /// migration asks) and reports every page: nothing was tracked before.
    /// </summary>
    public ulong[] FetchDirtyPages()
    {
        DirtyPageLog log = Memory.DirtyLog ?? throw new InvalidOperationException("this machine's memory has no dirty log");
        lock (_dirtyLogLock)
        {
            if (!_logDirtyPages)
            {
                _logDirtyPages = true;
                MapMemory();
                log.MarkAll();
            }
            else
            {
                uint slot = 0;
                ulong firstPage = 0;
                foreach (MemoryRegion region in MappedRegions)
                {
                    if (region.IsRam)
                    {
                        ulong pages = region.Size / MemoryRegion.PageSize;
                        ulong[] bitmap = new ulong[(pages + 63) / 64];
                        fixed (ulong* bits = bitmap)
                        {
                            var request = new KvmDirtyLog { Slot = slot, DirtyBitmap = (ulong)bits };
                            if (LibC.Ioctl(_fd, KvmIoctls.GetDirtyLog, &request) < 0)
                            {
                                throw LinuxException.FromLastError($"KVM_GET_DIRTY_LOG slot {slot}");
                            }
                        }

                        log.MarkBitmap(firstPage, bitmap);
                        firstPage += pages;
                    }

                    slot++;
                }
            }

            return log.FetchAndClear();
        }
    }

    /// <summary>The memory regions at creation, slot i for region i; regions added later have slots from <see cref="AllocateSlot"/>.</summary>
    internal IReadOnlyList<MemoryRegion> MappedRegions { get; }

    /// <summary>A memory slot number no region uses yet.</summary>
    internal uint AllocateSlot() => (uint)(Interlocked.Increment(ref _nextSlot) - 1);

    private void MapAddedRegion(MemoryRegion region)
    {
        var memoryRegion = new KvmUserspaceMemoryRegion
        {
            Slot = AllocateSlot(),
            Flags = region.ReadOnly ? KvmUserspaceMemoryRegion.MemReadonly : 0,
            GuestPhysAddr = region.GuestPhysicalAddress,
            MemorySize = region.Size,
            UserspaceAddr = (ulong)region.HostAddress,
        };
        if (LibC.Ioctl(Fd, KvmIoctls.SetUserMemoryRegion, &memoryRegion) < 0)
        {
            throw LinuxException.FromLastError($"KVM_SET_USER_MEMORY_REGION slot {memoryRegion.Slot} at 0x{region.GuestPhysicalAddress:x}+0x{region.Size:x}");
        }
    }

    private void MapMemory()
    {
        uint slot = 0;
        foreach (MemoryRegion region in MappedRegions)
        {
            var memoryRegion = new KvmUserspaceMemoryRegion
            {
                Slot = slot,
                Flags = region.ReadOnly ? KvmUserspaceMemoryRegion.MemReadonly
                    : _logDirtyPages && region.IsRam ? KvmUserspaceMemoryRegion.MemLogDirtyPages : 0,
                GuestPhysAddr = region.GuestPhysicalAddress,
                MemorySize = region.Size,
                UserspaceAddr = (ulong)region.HostAddress,
            };
            if (LibC.Ioctl(_fd, KvmIoctls.SetUserMemoryRegion, &memoryRegion) < 0)
            {
                throw LinuxException.FromLastError($"KVM_SET_USER_MEMORY_REGION slot {slot} at 0x{region.GuestPhysicalAddress:x}+0x{region.Size:x}");
            }

            slot++;
        }
    }

    private void IrqFd(EventFd eventFd, uint gsi, uint flags)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        var irqfd = new KvmIrqfd { Fd = (uint)eventFd.Fd, Gsi = gsi, Flags = flags };
        if (LibC.Ioctl(Fd, KvmIoctls.Irqfd, &irqfd) < 0)
        {
            throw LinuxException.FromLastError($"KVM_IRQFD gsi {gsi}{(flags != 0 ? " (deassign)" : "")}");
        }
    }

    private void IoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch, uint flags)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        if (length is not (1 or 2 or 4 or 8))
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"ioeventfd length must be 1, 2, 4 or 8, not {length}");
        }

        if (isPio && address + length > 0x1_0000)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"port 0x{address:x} is outside the I/O port space");
        }

        var ioeventfd = new KvmIoeventfd
        {
            Datamatch = datamatch ?? 0,
            Addr = address,
            Len = length,
            Fd = eventFd.Fd,
            Flags = flags | (isPio ? KvmIoeventfd.FlagPio : 0) | (datamatch.HasValue ? KvmIoeventfd.FlagDatamatch : 0),
        };
        if (LibC.Ioctl(Fd, KvmIoctls.Ioeventfd, &ioeventfd) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string what = isPio ? $"port 0x{address:x}" : $"address 0x{address:x}";
            throw new LinuxException($"KVM_IOEVENTFD {what} length {length}{((flags & KvmIoeventfd.FlagDeassign) != 0 ? " (deassign)" : "")}", errno);
        }
    }

    public string SnapshotTag => "kvm-vm";

    /// <summary>KVM_GET_CLOCK, KVM_GET_IRQCHIP (PIC master, slave, I/O APIC) and KVM_GET_PIT2.</summary>
    public void SaveState(SnapshotWriter w)
    {
        KvmClockData clock;
        VmIoctl(KvmIoctls.GetClock, &clock, "KVM_GET_CLOCK");
        w.Write(clock.Clock);
        foreach (uint chip in (ReadOnlySpan<uint>)[KvmIrqchip.PicMaster, KvmIrqchip.PicSlave, KvmIrqchip.IoApic])
        {
            var state = new KvmIrqchip { ChipId = chip };
            VmIoctl(KvmIoctls.GetIrqchip, &state, "KVM_GET_IRQCHIP");
            w.WriteBytes(new ReadOnlySpan<byte>(&state, sizeof(KvmIrqchip)));
        }

        KvmPitState2 pit;
        VmIoctl(KvmIoctls.GetPit2, &pit, "KVM_GET_PIT2");
        w.WriteBytes(new ReadOnlySpan<byte>(&pit, sizeof(KvmPitState2)));
    }

    public void LoadState(SnapshotReader r)
    {
        var clock = new KvmClockData { Clock = r.ReadUInt64() };
        var chips = new KvmIrqchip[3];
        for (int i = 0; i < chips.Length; i++)
        {
            chips[i] = global::System.Runtime.InteropServices.MemoryMarshal.Read<KvmIrqchip>(r.ReadBytes(sizeof(KvmIrqchip)));
            if (chips[i].ChipId != (uint)i)
            {
                throw r.Invalid($"irqchip {i} is saved as chip {chips[i].ChipId}");
            }
        }

        KvmPitState2 pit = global::System.Runtime.InteropServices.MemoryMarshal.Read<KvmPitState2>(r.ReadBytes(sizeof(KvmPitState2)));
        VmIoctl(KvmIoctls.SetClock, &clock, "KVM_SET_CLOCK");
        for (int i = 0; i < chips.Length; i++)
        {
            KvmIrqchip chip = chips[i];
            VmIoctl(KvmIoctls.SetIrqchip, &chip, "KVM_SET_IRQCHIP");
        }

        VmIoctl(KvmIoctls.SetPit2, &pit, "KVM_SET_PIT2");
    }

    /// <summary>The created vCPUs, in id order (a snapshot saves each).</summary>
    public IReadOnlyList<KvmVcpu> CreatedVcpus()
    {
        lock (_vcpuLock)
        {
            return _vcpus.OfType<KvmVcpu>().ToArray();
        }
    }

    /// <summary>KVM's in-kernel chips have no CMOS RTC; the guest runs on the host's processor and pages in hardware.</summary>
    public MachineCapabilities Capabilities { get; } = new() { Accelerator = "kvm" };

    /// <summary>The VM's state (clock, irqchips, PIT), then each vCPU's.</summary>
    public IReadOnlyList<ISnapshotable> SnapshotParts() => [this, .. CreatedVcpus()];

    /// <summary>"kvm" and the CPUID feature leaves vCPU 0 reports (after KVM adjusted them).</summary>
    public string CpuIdentity()
    {
        var text = new System.Text.StringBuilder("kvm");
        foreach (KvmCpuidEntry2 e in CreatedVcpus()[0].Cpuid.Where(e => e.Function is 0 or 1 or 7 or 0xD or 0x8000_0001).OrderBy(e => e.Function).ThenBy(e => e.Index))
        {
            uint ebx = e.Function == 1 ? 0 : e.Ebx; // the APIC ID byte is per vCPU
            text.Append($" {e.Function:x}.{e.Index}={e.Eax:x8}:{ebx:x8}:{e.Ecx:x8}:{e.Edx:x8}");
        }

        return text.ToString();
    }

    private void VmIoctl(nuint request, void* argument, string name)
    {
        if (LibC.Ioctl(Fd, request, argument) < 0)
        {
            throw LinuxException.FromLastError(name);
        }
    }
}
