namespace SharpVisor.Xen.Pv;

/// <summary>
/// The PV GDT: the guest's descriptor frames (set_gdt, update_descriptor) checked as Xen's
/// check_descriptor does and copied into the hypervisor's per-vCPU GDT, whose page 14 holds Xen's
/// flat ring-3 descriptors. The guest frames are typed SegmentDescriptor while in use, so the guest
/// cannot map them writable and change a descriptor behind the check.
/// </summary>
public sealed partial class PvCpu
{
    private const ulong DescriptorPresent = 1UL << 47;
    private const ulong DescriptorCodeOrData = 1UL << 44;
    private const ulong DescriptorDplMask = 3UL << 45;
    private const ulong DescriptorAccessed = 1UL << 40;

    /// <summary>Xen's reserved descriptors: FLAT_RING3_CS32 (0xe023), FLAT_RING3_DS (0xe02b), FLAT_RING3_CS64 (0xe033).</summary>
    private void WriteFlatDescriptors(int vcpuId)
    {
        ulong reserved = (_gdtFrames[vcpuId] + 14) << 12;
        Memory.Fill(_gdtFrames[vcpuId] << 12, 16 * 4096, 0);
        Memory.Write(reserved + (4 * 8), 0x00CF_FB00_0000_FFFFUL);
        Memory.Write(reserved + (5 * 8), 0x00CF_F300_0000_FFFFUL);
        Memory.Write(reserved + (6 * 8), 0x00AF_FB00_0000_FFFFUL);
    }

    /// <summary>
    /// check_descriptor for a 64-bit PV guest: not present is harmless; code and data get DPL 3
    /// (the guest kernel runs in ring 3, so it cannot describe ring 0); type-0 halves of 16-byte
    /// system descriptors are harmless; every other system descriptor (TSS, LDT, gates) is refused.
    /// Call gates, which Xen emulates, are refused here too.
    /// </summary>
    internal static bool TryCheckDescriptor(ulong descriptor, out ulong fixedUp)
    {
        fixedUp = descriptor;
        if ((descriptor & DescriptorPresent) == 0)
        {
            return true;
        }

        if ((descriptor & DescriptorCodeOrData) != 0)
        {
            fixedUp = descriptor | DescriptorDplMask | DescriptorAccessed;
            return true;
        }

        return ((descriptor >> 40) & 0xF) == 0;
    }

    /// <summary>set_gdt(frames[], entries): up to 14 pages of the guest's descriptors, each frame typed SegmentDescriptor while in use.</summary>
    private long SetGdt(HypercallFrame frame, PvVcpuState vcpu, Machine.Hypervisor.IParavirtualCpuContext cpu)
    {
        ulong list = frame.Argument(0);
        ulong entries = frame.Argument(1);
        if (entries > GuestGdtEntries)
        {
            _tables.Counters.Increment("pv-refused-gdt-size");
            return -XenErrno.EINVAL;
        }

        int pages = (int)((entries + 511) / 512);
        var frames = new ulong[pages];
        for (int i = 0; i < pages; i++)
        {
            frames[i] = frame.Read<ulong>(list + ((ulong)i * 8));
        }

        int rc = TakeGdtFrames(frames, out ulong[] copies);
        if (rc != 0)
        {
            return rc;
        }

        InstallGdt(vcpu, frames, (int)entries, copies);
        cpu.SetGdt(GdtBase(vcpu.Id), 0xFFFF);
        return 0;
    }

    /// <summary>
    /// Takes a SegmentDescriptor type reference on each frame and checks its descriptors into
    /// <paramref name="copies"/>; on a refusal no reference is left taken. 0 or a negative errno.
    /// </summary>
    private int TakeGdtFrames(ulong[] frames, out ulong[] copies)
    {
        copies = new ulong[frames.Length * 512];
        for (int i = 0; i < frames.Length; i++)
        {
            int rc = _tables.GetTypeReference(frames[i], PvPageType.SegmentDescriptor);
            if (rc == 0 && !TryCheckPage(frames[i], copies.AsSpan(i * 512, 512)))
            {
                _tables.PutTypeReference(frames[i]);
                rc = -XenErrno.EINVAL;
                _tables.Counters.Increment("pv-refused-gdt-descriptor");
            }

            if (rc != 0)
            {
                for (int j = 0; j < i; j++)
                {
                    _tables.PutTypeReference(frames[j]);
                }

                return rc;
            }
        }

        return 0;
    }

    /// <summary>Makes <paramref name="frames"/> (already referenced) the vCPU's GDT: the old frames' references go, the checked copies go into its hypervisor GDT.</summary>
    private void InstallGdt(PvVcpuState vcpu, ulong[] frames, int entries, ulong[] copies)
    {
        foreach (ulong old in vcpu.GdtFrames)
        {
            _tables.PutTypeReference(old);
        }

        vcpu.GdtFrames = frames;
        vcpu.GdtEntries = entries;
        ulong gdt = _gdtFrames[vcpu.Id] << 12;
        Memory.Fill(gdt, 14 * 4096, 0);
        for (int i = 0; i < entries; i++)
        {
            Memory.Write(gdt + ((ulong)i * 8), copies[i]);
        }

        Memory.NotifyExternalWrite(gdt, 14 * 4096);
    }

    /// <summary>update_descriptor(maddr, descriptor): checked, then written to the guest's frame and to every vCPU GDT holding that frame.</summary>
    private long UpdateDescriptor(HypercallFrame frame)
    {
        ulong address = frame.Argument(0);
        ulong descriptor = frame.Argument(1);
        ulong mfn = address >> 12;
        if ((address & 7) != 0 || !_tables.Owns(mfn) || !TryCheckDescriptor(descriptor, out ulong fixedUp))
        {
            _tables.Counters.Increment("pv-refused-descriptor");
            return -XenErrno.EINVAL;
        }

        // The write holds the frame's type (a GDT frame in use, else writable) so no vCPU retypes it meanwhile;
        // a page table in use is not a place for descriptors.
        PvPageType type = _tables.TypeInUse(mfn) == PvPageType.SegmentDescriptor ? PvPageType.SegmentDescriptor : PvPageType.Writable;
        if (!_tables.TryWriteAs(mfn, type, () => WriteDescriptor(address, mfn, fixedUp)))
        {
            _tables.Counters.Increment("pv-refused-descriptor");
            return -XenErrno.EINVAL;
        }

        return 0;
    }

    /// <summary>Writes a checked descriptor into the guest's frame and into every installed copy of it.</summary>
    private void WriteDescriptor(ulong address, ulong mfn, ulong fixedUp)
    {
        Memory.Write(address, fixedUp);
        Memory.NotifyExternalWrite(address, 8);
        foreach (PvVcpuState vcpu in _vcpus)
        {
            int page = Array.IndexOf(vcpu.GdtFrames, mfn);
            if (page >= 0)
            {
                ulong index = ((ulong)page * 512) + ((address & 0xFFF) >> 3);
                if ((int)index < vcpu.GdtEntries)
                {
                    ulong at = (_gdtFrames[vcpu.Id] << 12) + (index * 8);
                    Memory.Write(at, fixedUp);
                    Memory.NotifyExternalWrite(at, 8);
                }
            }
        }
    }

    private bool TryCheckPage(ulong mfn, Span<ulong> copy)
    {
        for (int i = 0; i < 512; i++)
        {
            if (!TryCheckDescriptor(Memory.Read<ulong>((mfn << 12) + ((ulong)i * 8)), out copy[i]))
            {
                return false;
            }
        }

        return true;
    }
}
