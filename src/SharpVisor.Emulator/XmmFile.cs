using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpVisor.Emulator;

/// <summary>XMM0-XMM15, plus one scratch slot that holds memory operands of SSE instructions.</summary>
/// <remarks>
/// The slots are plain 16-byte structs, read and written as <c>Vector128&lt;byte&gt;</c> through
/// <see cref="X86Cpu.Xmm"/>. A <c>Vector128</c> field would make <see cref="X86Cpu"/>'s layout
/// "ABI unstable" to ReadyToRun (crossgen2), which then precompiles no method that has an X86Cpu in
/// its signature — every handler — and the VMM would start in the JIT's unoptimised Tier0 code.
/// </remarks>
[InlineArray(Slots)]
internal struct XmmFile
{
    public const int Slots = 17;
    public const int Scratch = 16;

    private XmmSlot _element0;
}

/// <summary>One XMM register's 16 bytes (see <see cref="XmmFile"/> for why not a Vector128 field).</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct XmmSlot
{
    private ulong _low;
    private ulong _high;
}
