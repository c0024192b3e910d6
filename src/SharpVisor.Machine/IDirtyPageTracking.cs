namespace SharpVisor.Machine;

/// <summary>
/// An accelerator whose guest stores reach the memory's <see cref="SharpVisor.Memory.DirtyPageLog"/>:
/// the emulator marks it itself, KVM through KVM_GET_DIRTY_LOG. Diff snapshots and migration
/// rounds fetch through here, never from the log directly, so the accelerator can make the next
/// store to every page mark it again.
/// </summary>
public interface IDirtyPageTracking
{
    /// <summary>
    /// The pages written since the previous call (a bitmap over the RAM pages, numbered as in
    /// the memory file), cleared. Callable while vCPUs run: a page written after its bit was
    /// taken is in the next fetch; what a fetched page held is in memory once this returns.
    /// </summary>
    ulong[] FetchDirtyPages();
}
