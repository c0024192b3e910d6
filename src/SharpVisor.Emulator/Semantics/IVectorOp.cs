using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator;

/// <summary>
/// A 128-bit SSE operation on (destination, source, imm8) → destination, as a type so the
/// generic handlers specialize per operation. The same operation applied to the low 64 bits
/// serves the MMX form where the semantics are lane-wise.
/// </summary>
internal interface IVectorOp
{
    static abstract Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm);
}
