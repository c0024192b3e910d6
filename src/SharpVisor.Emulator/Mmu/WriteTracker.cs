using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// The machine's write-tracked guest frames, one set shared by all its vCPUs: the frames some
/// vCPU has decoded code from or shadows a page table in (KVM's page-track write tracking,
/// QEMU's DIRTY_MEMORY_CODE). No vCPU's TLB holds a write tag for a tracked frame, so every store
/// to one takes the slow path, which reports it to every vCPU tracking the frame; each vCPU applies
/// the reports it received (drops its blocks, updates its shadows) at its next block boundary.
/// </summary>
/// <remarks>
/// One word per frame: bits 0-31 say which vCPUs track it for code, bits 32-63 for page tables.
/// vCPU n owns bit n; vCPUs from 31 on share bit 31, which is never cleared (they only ever get
/// more reports than they need). The words live in chunks allocated the first time a frame in
/// them is tracked, so memory follows the guest's code and page tables, not its RAM size.
/// Each vCPU joins with its TLB (<see cref="Join"/>) and uses its <see cref="WriteTrackerMember"/>.
/// </remarks>
public sealed class WriteTracker : IExternalWriteObserver
{
    internal const int SharedBit = 31;
    private const int ChunkShift = 12;
    private const int ChunkFrames = 1 << ChunkShift;

    // Frames below 2^40 (MAXPHYADDR 40, and GuestMemory.MaxRamSize): 2^28 frames in 2^16 chunks.
    private const ulong FrameLimit = 1UL << 28;

    private readonly ulong[]?[] _chunks = new ulong[]?[FrameLimit >> ChunkShift];
    private readonly object _joinLock = new();
    private WriteTrackerMember[] _members = [];

    public WriteTracker(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        Memory = memory;
    }

    public GuestMemory Memory { get; }

    /// <summary>The vCPUs, by join order (a copy-on-write array: safe to enumerate from any thread).</summary>
    internal WriteTrackerMember[] Members => Volatile.Read(ref _members);

    /// <summary>
    /// After the dirty log was fetched: takes write access away from every TLB of the machine, so
    /// each vCPU's next store to any page marks the log again, then waits until every vCPU that was
    /// executing guest instructions has passed a block boundary — a store already past its tag
    /// check has then landed (in memory copied after this returns). Gives up waiting after
    /// <paramref name="timeout"/> and returns false (a vCPU thread descheduled for that long).
    /// </summary>
    public bool RevokeAllWriteAccess(TimeSpan timeout)
    {
        lock (_joinLock)
        {
            // From now on other threads revoke tags in every TLB: re-stamping must not revive them.
            foreach (WriteTrackerMember m in _members)
            {
                m.Tlb.Shared = true;
            }
        }

        WriteTrackerMember[] members = Members;
        var progress = new long[members.Length];
        for (int i = 0; i < members.Length; i++)
        {
            members[i].Tlb.RevokeAllWrites();
            progress[i] = members[i].Progress;
        }

        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        for (int i = 0; i < members.Length; i++)
        {
            var spin = new SpinWait();
            while ((progress[i] & 1) != 0 && members[i].Progress == progress[i])
            {
                if (Environment.TickCount64 > deadline)
                {
                    return false;
                }

                spin.SpinOnce();
            }
        }

        return true;
    }

    /// <summary>Adds a vCPU whose TLB this tracker keeps free of write tags for tracked frames.</summary>
    public WriteTrackerMember Join(SoftTlb tlb)
    {
        ArgumentNullException.ThrowIfNull(tlb);
        lock (_joinLock)
        {
            var member = new WriteTrackerMember(this, _members.Length, tlb);
            WriteTrackerMember[] members = [.. _members, member];
            if (members.Length > 1)
            {
                // Other threads now revoke write tags in each TLB: TLB updates must allow for that.
                foreach (WriteTrackerMember m in members)
                {
                    m.Tlb.Shared = true;
                }
            }

            Volatile.Write(ref _members, members);
            return member;
        }
    }

    /// <summary>Whether some vCPU tracks the frame of <paramref name="physicalAddress"/>: stores to it must be reported.</summary>
    public bool IsTracked(ulong physicalAddress)
    {
        ulong frame = physicalAddress >> 12;
        if (frame >= FrameLimit)
        {
            return false;
        }

        ulong[]? chunk = Volatile.Read(ref _chunks[frame >> ChunkShift]);
        return chunk is not null && Volatile.Read(ref chunk[frame & (ChunkFrames - 1)]) != 0;
    }

    /// <summary>
    /// A write to guest memory that did not pass through a vCPU (device DMA, the VMM loading an
    /// image): every vCPU tracking a frame in the range re-reads what it derived from it.
    /// </summary>
    /// <remarks>The emulator's VM registers its tracker as <see cref="GuestMemory.ExternalWrites"/>, which devices report to.</remarks>
    public void OnExternalWrite(ulong physicalAddress, ulong length) => Publish(null, physicalAddress, length);

    /// <summary>The word of tracking bits for <paramref name="frame"/>, allocating its chunk if asked.</summary>
    internal ref ulong WordFor(ulong frame, bool create, out bool exists)
    {
        exists = false;
        if (frame >= FrameLimit)
        {
            return ref System.Runtime.CompilerServices.Unsafe.NullRef<ulong>();
        }

        ref ulong[]? slot = ref _chunks[frame >> ChunkShift];
        ulong[]? chunk = Volatile.Read(ref slot);
        if (chunk is null)
        {
            if (!create)
            {
                return ref System.Runtime.CompilerServices.Unsafe.NullRef<ulong>();
            }

            Interlocked.CompareExchange(ref slot, new ulong[ChunkFrames], null);
            chunk = Volatile.Read(ref slot)!;
        }

        exists = true;
        return ref chunk[frame & (ChunkFrames - 1)];
    }

    /// <summary>Queues the write for every vCPU but <paramref name="writer"/> that tracks a frame it touched.</summary>
    internal void Publish(WriteTrackerMember? writer, ulong physicalAddress, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong last = physicalAddress + length - 1;
        if (last < physicalAddress)
        {
            last = ulong.MaxValue;
        }

        ulong first = physicalAddress >> 12;
        ulong lastFrame = Math.Min(last >> 12, FrameLimit - 1);
        uint watchers = 0;
        for (ulong frame = first; frame <= lastFrame; frame++)
        {
            ulong[]? chunk = Volatile.Read(ref _chunks[frame >> ChunkShift]);
            if (chunk is null)
            {
                frame |= ChunkFrames - 1; // skip the rest of an untouched chunk
                continue;
            }

            ulong word = Volatile.Read(ref chunk[frame & (ChunkFrames - 1)]);
            watchers |= (uint)word | (uint)(word >> 32);
        }

        if (watchers == 0)
        {
            return;
        }

        foreach (WriteTrackerMember member in Members)
        {
            if (member != writer && (watchers & (1u << member.BitIndex)) != 0)
            {
                member.Post(physicalAddress, length);
            }
        }
    }
}
