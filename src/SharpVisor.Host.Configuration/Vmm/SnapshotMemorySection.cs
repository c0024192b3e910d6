using SharpVisor.Machine.Snapshots;
using SharpVisor.Memory;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// A snapshot's memory section (docs/snapshot.md): the RAM size, whether it is a diff and the
/// diff's pages; and laying a diff's pages over its base (Firecracker's rebase-snap), which the
/// daemon and the CLI do without a VMM.
/// </summary>
public static class SnapshotMemorySection
{
    public const string Tag = "memory";

    /// <summary>
    /// Lays a diff snapshot's memory over the full snapshot's memory file <paramref name="baseMemoryPath"/>
    /// in place (Firecracker's rebase-snap): afterwards that file and the diff's state file restore
    /// the diff's instant. Returns the pages copied; a state file that is not a diff's is refused.
    /// </summary>
    public static int Rebase(string baseMemoryPath, string diffStatePath, string diffMemoryPath)
    {
        (ulong ramSize, bool diff, HashSet<ulong> pages) = Read(SnapshotFile.Load(diffStatePath));
        if (!diff)
        {
            throw new SnapshotException($"{diffStatePath} is a full snapshot, not a diff: there is nothing to lay over a base");
        }

        try
        {
            return GuestMemoryImage.Rebase(baseMemoryPath, diffMemoryPath, ramSize, pages.Order());
        }
        catch (IOException e)
        {
            throw new SnapshotException(e.Message, e);
        }
    }

    /// <summary>The memory section: RAM size, whether it is a diff, and the diff's pages (checked: page-aligned RAM addresses).</summary>
    public static (ulong RamSize, bool Diff, HashSet<ulong> Pages) Read(SnapshotFile file)
    {
        SnapshotReader memorySection = file.Open(Tag);
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
            ulong page = memorySection.ReadUInt64();
            if (GuestMemoryImage.FileOffsetOf(page, ramSize) is null)
            {
                throw memorySection.Invalid($"diff page 0x{page:x}");
            }

            pages.Add(page);
        }

        memorySection.EnsureEnd();
        return (ramSize, diff, pages);
    }
}
