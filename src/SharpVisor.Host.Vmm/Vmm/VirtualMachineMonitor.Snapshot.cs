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
        file.Add(SnapshotMemorySection.Tag, memoryWriter.ToArray());

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

        (ulong ramSize, bool diff, HashSet<ulong> pages) = SnapshotMemorySection.Read(file);
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
                if (diff && baseMemoryPath is not null)
                {
                    GuestMemoryImage.Load(vmm._memory, baseMemoryPath);
                    GuestMemoryImage.Load(vmm._memory, memoryPath, pages.Contains);
                }
                else if (diff)
                {
                    // Firecracker's way: the memory file is the base with this diff laid over it
                    // (SnapshotMemorySection.Rebase). The diff's own file has nothing outside its pages: refused.
                    GuestMemoryImage.Load(vmm._memory, memoryPath);
                    if (!vmm.HasDataOutside(pages))
                    {
                        throw new SnapshotException($"this is a diff snapshot and {memoryPath} holds only the diff's pages: lay it over the full snapshot's memory file first (sharpvisor snapshot-rebase) or restore with the base (sharpvisor restore --base)");
                    }
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


    /// <summary>Whether a page of RAM outside <paramref name="pages"/> holds anything but zeros (a full image was loaded, not a diff's own).</summary>
    private bool HasDataOutside(HashSet<ulong> pages)
    {
        foreach (MemoryRegion region in _memory.Regions.Where(r => r.IsRam))
        {
            for (ulong offset = 0; offset < region.Size; offset += MemoryRegion.PageSize)
            {
                ulong address = region.GuestPhysicalAddress + offset;
                if (!pages.Contains(address) && _memory.GetSpan(address, (int)MemoryRegion.PageSize).IndexOfAnyExcept((byte)0) >= 0)
                {
                    return true;
                }
            }
        }

        return false;
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
            throw new NotSupportedException(SnapshotConfiguration.XenStateNotSaved(Configuration.Xen.ToString().ToLowerInvariant()));
        }

        if (_machine is not ISnapshotableMachine)
        {
            throw new NotSupportedException($"snapshots of {_machine.GetType().Name} machines are not implemented");
        }
    }

    /// <summary>The accelerator and what the guest saw of the CPU (vendor, CPUID feature leaves): a snapshot loads only where they are the same.</summary>
    private string CpuIdentity() => ((ISnapshotableMachine)_machine).CpuIdentity();
}
