namespace SharpVisor.Host.Vmm;

/// <summary>
/// The emulator's paging technique a machine asks for (<c>--mmu</c>): the configuration's own
/// name for it, so the daemon and the API read configurations without the emulator's assembly.
/// The values are the snapshot file's (and the emulator's <c>MmuMode</c>'s).
/// </summary>
public enum MmuKind
{
    Shadow = 0,

    Nested = 1,
}
