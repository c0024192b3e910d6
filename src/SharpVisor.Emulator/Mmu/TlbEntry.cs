using System.Runtime.InteropServices;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// One software-TLB slot: for each kind of access, a tag that equals
/// <c>(linear &amp; ~0xFFF) | stamp</c> when that access is allowed without asking the MMU, and
/// the addend that turns a linear address of the page into a host address.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct TlbEntry
{
    public ulong ReadTag;
    public ulong WriteTag;
    public ulong ExecuteTag;

    /// <summary>host address = linear address + Addend.</summary>
    public nint Addend;
}
