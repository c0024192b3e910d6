using System.Diagnostics;
using System.Text;
using SharpVisor.Emulator;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Kvm;
using SharpVisor.Machine;
using SharpVisor.Machine.Snapshots;
using SharpVisor.Memory;

namespace SharpVisor.Host.Vmm;

/// <summary>Snapshots of the machine (docs/snapshot.md): the state file and the sparse memory file.</summary>
public sealed partial class VirtualMachineMonitor
{
    private const string CpuTag = "cpu";
    private const string MemoryTag = "memory";

    // Whether a snapshot fetched the dirty log: a diff holds the pages written since.
    private bool _dirtyLogFetched;

    /// <summary>
    /// Writes a snapshot of the paused machine: <paramref name="statePath"/> (sections with
    /// checksums) and <paramref name="memoryPath"/> (sparse; with <paramref name="diff"/> only the
    /// pages whose content changed since this machine's previous snapshot). Virtio queue work runs
    /// whole under each device's lock, so no request is in flight in the saved state.
    /// </summary>
    public SnapshotSummary SaveSnapshot(string statePath, string memoryPath, bool diff = false)
    {
        if (!IsPaused)
        {
            throw new InvalidOperationException("the machine must be paused to take a snapshot");
        }

        RequireSnapshotSupport();
        if (diff && !_dirtyLogFetched)
        {
            throw new InvalidOperationException("a diff snapshot needs a previous snapshot of this machine to compare with");
        }

        var clock = Stopwatch.StartNew();
        var file = new SnapshotFile();
        file.Add(SnapshotConfiguration.Tag, SaveConfiguration());
        var cpu = new SnapshotWriter();
        cpu.Write(CpuIdentity());
        file.Add(CpuTag, cpu.ToArray());
        foreach (ISnapshotable part in SnapshotParts())
        {
            file.Add(part);
        }

        // The dirty log since the previous snapshot (the emulator's stores, KVM's dirty log, DMA).
        ulong[] dirty = ((IDirtyPageTracking)_machine).FetchDirtyPages();
        _dirtyLogFetched = true;
        var changed = new HashSet<ulong>();
        if (diff)
        {
            foreach (ulong page in DirtyPageLog.PagesIn(dirty))
            {
                changed.Add(_memory.DirtyLog!.AddressOf(page));
            }
        }

        var memoryWriter = new SnapshotWriter();
        memoryWriter.Write(_memory.RamSize);
        memoryWriter.Write(diff);
        memoryWriter.Write(changed.Order().ToArray());
        file.Add(MemoryTag, memoryWriter.ToArray());

        long written = GuestMemoryImage.Save(_memory, memoryPath, diff ? changed.Contains : null);
        file.Save(statePath);
        return new SnapshotSummary(written, diff ? changed.Count : -1, clock.Elapsed);
    }

    /// <summary>
    /// Builds the machine a snapshot describes and loads its state: <paramref name="memoryPath"/> is
    /// the snapshot's memory file; a diff snapshot is laid over <paramref name="baseMemoryPath"/>, the
    /// full memory file it was taken after. <paramref name="adjust"/> gives the host side (serial
    /// output, log). The machine is returned ready to <see cref="Run"/>. A corrupt or incompatible
    /// snapshot throws <see cref="SnapshotException"/> with one line.
    /// </summary>
    public static VirtualMachineMonitor Restore(string statePath, string memoryPath, Func<MachineConfiguration, MachineConfiguration>? adjust = null, string? baseMemoryPath = null)
    {
        SnapshotFile file = SnapshotFile.Load(statePath);
        SnapshotReader machine = file.Open(SnapshotConfiguration.Tag);
        MachineConfiguration configuration = SnapshotConfiguration.Load(machine, out bool hasVirtioConsole);
        machine.EnsureEnd();
        if (hasVirtioConsole)
        {
            configuration = configuration with { VirtioConsoleOutput = Stream.Null };
        }

        SnapshotReader memorySection = file.Open(MemoryTag);
        ulong ramSize = memorySection.ReadUInt64();
        bool diff = memorySection.ReadBoolean();
        int count = memorySection.ReadInt32();
        if (count < 0 || (ulong)count > ramSize / MemoryRegion.PageSize)
        {
            throw memorySection.Invalid($"{count} diff pages");
        }

        var pages = new HashSet<ulong>(count);
        for (int i = 0; i < count; i++)
        {
            pages.Add(memorySection.ReadUInt64());
        }

        memorySection.EnsureEnd();
        if (diff && baseMemoryPath is null)
        {
            throw new SnapshotException("this is a diff snapshot: restoring it needs the full snapshot's memory file it was taken after");
        }

        configuration = adjust?.Invoke(configuration) ?? configuration;
        VirtualMachineMonitor vmm = Create(configuration);
        try
        {
            vmm.RequireSnapshotSupport();
            string saved = file.Open(CpuTag).ReadString();
            string here = vmm.CpuIdentity();
            if (saved != here)
            {
                throw new SnapshotException($"snapshot was taken on another CPU model or feature set (saved: {saved}; here: {here})");
            }

            if (vmm._memory.RamSize != ramSize)
            {
                throw new SnapshotException($"snapshot memory is {ramSize} bytes, the machine built from it has {vmm._memory.RamSize}");
            }

            try
            {
                if (diff)
                {
                    GuestMemoryImage.Load(vmm._memory, baseMemoryPath!);
                    GuestMemoryImage.Load(vmm._memory, memoryPath, pages.Contains);
                }
                else
                {
                    GuestMemoryImage.Load(vmm._memory, memoryPath);
                }
            }
            catch (IOException e)
            {
                throw new SnapshotException(e.Message, e);
            }

            foreach (ISnapshotable part in vmm.SnapshotParts())
            {
                file.Load(part);
            }

            vmm.Devices.NotifyAllQueues();
            return vmm;
        }
        catch
        {
            vmm.Dispose();
            throw;
        }
    }

    /// <summary>Everything with state, in load order: platform (time first), vCPUs, legacy devices, ACPI PM, PCI functions.</summary>
    private IEnumerable<ISnapshotable> SnapshotParts()
    {
        IEnumerable<ISnapshotable> machine = _machine is ISnapshotableMachine snapshotable
            ? snapshotable.SnapshotParts()
            : throw new NotSupportedException($"snapshots of {_machine.GetType().Name} machines are not implemented");
        foreach (ISnapshotable part in machine)
        {
            yield return part;
        }

        yield return Legacy.Serial;
        yield return Legacy.KeyboardController;
        yield return PowerManagement;
        foreach (ISnapshotable part in Devices.SnapshotParts)
        {
            yield return part;
        }
    }

    private void RequireSnapshotSupport()
    {
        if (Xen is not null)
        {
            throw new NotSupportedException("snapshots of Xen domains are not implemented yet");
        }

        if (_machine is not ISnapshotableMachine)
        {
            throw new NotSupportedException($"snapshots of {_machine.GetType().Name} machines are not implemented");
        }
    }

    /// <summary>The accelerator and what the guest saw of the CPU (vendor, CPUID feature leaves): a snapshot loads only where they are the same.</summary>
    private string CpuIdentity() => ((ISnapshotableMachine)_machine).CpuIdentity();
}
