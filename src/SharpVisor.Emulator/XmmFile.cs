using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator;

/// <summary>XMM0-XMM15, plus one scratch slot that holds memory operands of SSE instructions.</summary>
[InlineArray(Slots)]
internal struct XmmFile
{
    public const int Slots = 17;
    public const int Scratch = 16;

    private Vector128<byte> _element0;
}
