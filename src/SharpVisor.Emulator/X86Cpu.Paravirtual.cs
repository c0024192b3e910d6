namespace SharpVisor.Emulator;

/// <summary>
/// What a paravirtualizing hypervisor (Xen PV, through <see cref="ICpuPlatform.TryParavirtualEvent"/>
/// and <see cref="ICpuPlatform.TryParavirtualSyscall"/>) does to the CPU instead of the guest kernel:
/// segment loads through the descriptor tables, GDTR, CR3 and CR0.TS, CPUID as the guest sees it.
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>Loads a segment register (CS too: a code segment, present) with the checks of the current mode; false leaves everything as it was.</summary>
    internal bool TryLoadSegmentRegister(int segment, ushort selector)
    {
        try
        {
            if (segment != SegCs)
            {
                LoadSegment(segment, selector);
                return true;
            }

            if ((selector & 0xFFFC) == 0)
            {
                return false;
            }

            ulong descriptor = ReadDescriptor(selector);
            var cache = SegmentCache.FromDescriptor(selector, descriptor);
            if (cache.IsSystem || cache.IsData || !cache.Present || cache.Dpl != (selector & 3))
            {
                return false;
            }

            MarkAccessed(selector, descriptor);
            _segs[SegCs] = SegmentCache.FromDescriptor(selector, descriptor | (1UL << 40));
            UpdateMode();
            return true;
        }
        catch (CpuException)
        {
            return false;
        }
    }

    internal void SetGdtr(ulong linearBase, ushort limit)
    {
        _gdtBase = linearBase;
        _gdtLimit = limit;
    }

    /// <summary>CR3 as the hypervisor loads it (no reserved-bit #GP: the root was validated).</summary>
    internal void LoadPageTableRoot(ulong value)
    {
        if (!_mmu.OnCr3Write(value))
        {
            throw new InvalidOperationException($"the MMU refused CR3 0x{value:x}");
        }

        _cr3 = value;
        FlushJumpCache();
    }

    internal bool TaskSwitched
    {
        get => (_cr0 & 8) != 0;
        set
        {
            _cr0 = value ? _cr0 | 8 : _cr0 & ~8UL;
            RefreshFpuAvailability();
        }
    }

    internal ulong KernelGsBase
    {
        get => _kernelGsBase;
        set => _kernelGsBase = value;
    }

    /// <summary>CPUID's answer for a leaf, without touching the registers.</summary>
    internal (uint Eax, uint Ebx, uint Ecx, uint Edx) QueryCpuid(uint leaf, uint subleaf)
    {
        (uint a, uint b, uint c, uint d) = Model.Query(leaf, subleaf, (_cr4 & Cr4OsXsave) != 0);
        Platform?.AdjustCpuid(this, leaf, subleaf, ref a, ref b, ref c, ref d);
        return (a, b, c, d);
    }
}
