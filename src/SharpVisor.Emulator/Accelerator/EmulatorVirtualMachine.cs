using SharpVisor.Machine.Snapshots;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// A machine on the software accelerator: guest memory, the I/O buses, the software platform
/// (its <see cref="SoftwareIrqChip"/> is the machine's interrupt controller, and its PIC, PIT,
/// RTC and I/O APIC sit on the buses as KVM's in-kernel ones would), and the vCPUs.
/// </summary>
public sealed class EmulatorVirtualMachine : IVirtualMachine, IHypervisorInterfaceHost, IDirtyPageTracking, ISnapshotableMachine, SharpVisor.Machine.Protection.IProtectedMachine, SharpVisor.Machine.CpuTemplates.ICpuTemplateMachine
{
    /// <summary>As for KVM: xAPIC ids are 8 bits and 0xFF is broadcast.</summary>
    public const int MaxVcpus = 255;

    private readonly EmulatorVcpu?[] _vcpus;
    private readonly object _vcpuLock = new();
    private readonly SecondLevelTable? _secondLevel;

    public EmulatorVirtualMachine(GuestMemory memory, int vcpuCount, MmuMode mmuMode = MmuMode.Shadow, Action<string>? log = null, CpuVendor? vendor = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (vcpuCount < 1 || vcpuCount > MaxVcpus)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpuCount), $"{vcpuCount} vCPUs requested; the emulator supports 1..{MaxVcpus}");
        }

        Memory = memory;
        VcpuCount = vcpuCount;
        MmuMode = mmuMode;
        CpuModel = EmulatorCpuModel.Create(PlatformTimeBase.DefaultTscFrequencyHz, vendor ?? HostCpu.Vendor);
        Platform = new SoftwarePlatform(memory, vcpuCount, log: new PlatformLog(log));
        Platform.Register(PortIo, Mmio);
        _vcpus = new EmulatorVcpu?[vcpuCount];

        // The hypervisor's own GPA→host table, shared read-only by every vCPU's nested MMU.
        _secondLevel = mmuMode == MmuMode.Nested ? SecondLevelTable.Build(memory) : null;
        if (_secondLevel is not null)
        {
            // Regions added while the guest runs (Xen grant frames outside RAM) join the table.
            memory.RegionAdded += OnRegionAdded;
        }

        // The frames whose stores every vCPU must see (decoded code, shadowed page tables).
        // Device DMA into guest memory reaches it too (GuestMemory.NotifyExternalWrite), so a disk
        // read into pages that held code drops the blocks decoded from them.
        WriteTracker = new WriteTracker(memory);
        memory.ExternalWrites = WriteTracker;

        // VMCALL/VMMCALL: KVM's ABI, as CPUID 0x40000000 tells the guest.
        Hypercalls = new KvmHypercalls(new EmulatorParavirtTarget(this));

        // A stop request (power-off, debug exit, crash) ends every vCPU's Run, with or without a runner.
        Control.OnStop(KickAll);
    }

    public GuestMemory Memory { get; }

    public PortIoBus PortIo { get; } = new();

    public MmioBus Mmio { get; } = new();

    public IInterruptController Interrupts => Platform.IrqChip;

    public MachineControl Control { get; } = new();

    /// <summary>KVM's hypercall ABI by default (<see cref="KvmHypercalls"/>); every vCPU's VMCALL/VMMCALL comes here.</summary>
    public IHypercallHandler? Hypercalls { get; set; }

    /// <summary>
    /// The domain's kernel protection (docs/security.md), enforced by every vCPU's MMU and CPU;
    /// set before the vCPUs are created. Null: none.
    /// </summary>
    public SharpVisor.Machine.Protection.ProtectionMap? Protection { get; set; }

    /// <summary>The CPU template each vCPU applies (CPUID answers, initial MSRs); set before the vCPUs are created.</summary>
    public SharpVisor.Machine.CpuTemplates.CpuTemplate? CpuTemplate { get; set; }

    public int VcpuCount { get; }

    public MmuMode MmuMode { get; }

    public MachineCapabilities Capabilities => new()
    {
        Accelerator = "emulator",
        HasCmosRtc = true,
        Mmu = MmuMode.ToString().ToLowerInvariant(),
        CpuVendor = HostCpu.Name(CpuModel.Vendor),
    };

    /// <summary>The processor every vCPU reports through CPUID.</summary>
    public CpuModel CpuModel { get; }

    /// <summary>The devices KVM would provide in-kernel, and the time base (pause it with the machine).</summary>
    public SoftwarePlatform Platform { get; }

    /// <summary>The paravirtual interface the vCPUs route hypervisor CPUID leaves, its MSRs and hypercalls to.</summary>
    public IHypervisorInterface? Hypervisor { get; private set; }

    public void AttachHypervisorInterface(IHypervisorInterface hypervisor)
    {
        ArgumentNullException.ThrowIfNull(hypervisor);
        lock (_vcpuLock)
        {
            if (Hypervisor is not null || _vcpus.Any(v => v is not null))
            {
                throw new InvalidOperationException("a hypervisor interface is attached once, before the vCPUs are created");
            }

            Hypervisor = hypervisor;
        }

        hypervisor.Connect(new EmulatorHypervisorHost(this));
    }

    /// <summary>Wakes vCPU <paramref name="id"/> for an upcall (nothing if it does not exist yet).</summary>
    internal void WakeVcpu(int id)
    {
        EmulatorVcpu? vcpu = (uint)id < (uint)_vcpus.Length ? Volatile.Read(ref _vcpus[id]) : null;
        vcpu?.WakeForUpcall();
    }

    /// <summary>vCPU <paramref name="id"/>, which must exist (the hypervisor interface names its own vCPUs).</summary>
    internal EmulatorVcpu Vcpu(int id) =>
        ((uint)id < (uint)_vcpus.Length ? Volatile.Read(ref _vcpus[id]) : null)
        ?? throw new ArgumentOutOfRangeException(nameof(id), $"vCPU {id} does not exist");

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

            var vcpu = new EmulatorVcpu(this, id);
            _vcpus[id] = vcpu;
            return vcpu;
        }
    }

    /// <summary>The vCPU whose local APIC has id <paramref name="apicId"/>, if it exists.</summary>
    internal EmulatorVcpu? FindVcpuByApicId(uint apicId)
    {
        lock (_vcpuLock)
        {
            foreach (EmulatorVcpu? vcpu in _vcpus)
            {
                if (vcpu is not null && vcpu.LocalApic.Id == apicId)
                {
                    return vcpu;
                }
            }
        }

        return null;
    }

    /// <summary>Freezes virtual time (TSC, timers, kvmclock) while the machine is paused.</summary>
    public void PauseTime() => Platform.Pause();

    /// <summary>Restarts virtual time and tells the guest (kvmclock) it was stopped; nothing if time is not paused.</summary>
    public void ResumeTime()
    {
        if (Platform.Time.IsPaused)
        {
            Platform.Resume();
        }
    }

    /// <summary>The machine's write-tracked frames, shared by the vCPUs' MMUs and code caches.</summary>
    public WriteTracker WriteTracker { get; }

    /// <summary>The one place a vCPU's MMU is made: shadow or nested paging over this machine's memory.</summary>
    internal Mmu.IMmu CreateMmu(MmuMode mode) => MmuFactory.Create(mode, Memory, _secondLevel, MmuOptions, WriteTracker);

    /// <summary>The options the MMU is built with: MAXPHYADDR must agree with CPUID 0x80000008.</summary>
    internal MmuOptions MmuOptions => new() { PhysicalAddressBits = EmulatorCpuModel.PhysicalAddressBits(CpuModel) };

    internal SecondLevelTable? SecondLevel => _secondLevel;

    /// <summary>
    /// Stops the vCPUs (waiting up to 5 seconds each for their threads to leave Run) and frees the
    /// second-level table — unless a vCPU thread is still inside the guest, which may still use it.
    /// </summary>
    public void Dispose()
    {
        bool allStopped = true;
        lock (_vcpuLock)
        {
            foreach (EmulatorVcpu? vcpu in _vcpus)
            {
                allStopped &= vcpu?.StopAndWait(TimeSpan.FromSeconds(5)) ?? true;
            }
        }

        Memory.RegionAdded -= OnRegionAdded;
        if (allStopped)
        {
            _secondLevel?.Dispose();
        }

        if (Memory.ExternalWrites == WriteTracker)
        {
            Memory.ExternalWrites = null;
        }
    }

    private void OnRegionAdded(MemoryRegion region) => _secondLevel?.MapRegion(region);

    private void KickAll()
    {
        EmulatorVcpu?[] vcpus;
        lock (_vcpuLock)
        {
            vcpus = (EmulatorVcpu?[])_vcpus.Clone();
        }

        foreach (EmulatorVcpu? vcpu in vcpus)
        {
            vcpu?.Kick();
        }
    }

    /// <summary>
    /// The platform's parts and every created vCPU (with its local APIC), in load order. Call while
    /// the vCPUs are parked; a vCPU not yet created is not part of the machine.
    /// </summary>
    /// <summary>
    /// Fetches and clears the dirty log, then revokes every vCPU's TLB write tags and waits for
    /// stores past their tag check (<see cref="WriteTracker.RevokeAllWriteAccess"/>). Within a
    /// vCPU thread stalled beyond the wait, every page is reported dirty again next time rather
    /// than risk a lost store.
    /// </summary>
    public ulong[] FetchDirtyPages()
    {
        DirtyPageLog log = Memory.DirtyLog ?? throw new InvalidOperationException("this machine's memory has no dirty log");
        ulong[] pages = log.FetchAndClear();
        if (!WriteTracker.RevokeAllWriteAccess(TimeSpan.FromSeconds(2)))
        {
            log.MarkAll(); // a store may land after these pages are copied: the next fetch has them all
        }

        return pages;
    }

    public IReadOnlyList<ISnapshotable> SnapshotParts()
    {
        lock (_vcpuLock)
        {
            return [.. Platform.SnapshotParts, .. _vcpus.OfType<EmulatorVcpu>()];
        }
    }

    /// <summary>
    /// What the guest saw of the processor: vendor and the CPUID feature leaves. A snapshot taken on
    /// one model is refused on another (the guest chose code paths by these bits).
    /// </summary>
    public string CpuIdentity()
    {
        var text = new System.Text.StringBuilder($"emulator {CpuModel.VendorString}");
        foreach ((uint leaf, uint subleaf) in ((uint, uint)[])[(1, 0), (7, 0), (0xD, 0), (0x8000_0001, 0)])
        {
            (uint eax, uint ebx, uint ecx, uint edx) = CpuModel.Query(leaf, subleaf, osxsave: false);
            if (leaf == 1)
            {
                ebx = 0; // the APIC ID and the CLFLUSH/count bytes are per vCPU, not the model
            }

            text.Append($" {leaf:x}.{subleaf}={eax:x8}:{ebx:x8}:{ecx:x8}:{edx:x8}");
        }

        return text.ToString();
    }
}
