using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator;

/// <summary>SSE4.2 string compares (Aux: bit 0 explicit lengths, bit 1 mask output, bit 2 64-bit length registers).</summary>
internal static class StringCompareHandlers
{
    public static void Compare(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        Vector128<byte> a = cpu.Xmm(op.Reg);
        int imm = (int)op.Imm;
        bool words = (imm & 1) != 0;
        int lengthA;
        int lengthB;
        if ((op.Aux & 1) != 0)
        {
            bool wide = (op.Aux & 4) != 0;
            lengthA = StringCompare.ExplicitLength(wide ? (long)cpu.Gpr(0) : (int)cpu.Gpr(0), words);
            lengthB = StringCompare.ExplicitLength(wide ? (long)cpu.Gpr(2) : (int)cpu.Gpr(2), words);
        }
        else
        {
            lengthA = StringCompare.ImplicitLength(a, words);
            lengthB = StringCompare.ImplicitLength(b, words);
        }

        uint result = StringCompare.Compare(a, b, imm, lengthA, lengthB, out ulong flags);
        if ((op.Aux & 2) != 0)
        {
            cpu.Xmm(0) = StringCompare.Mask(result, imm);
        }
        else
        {
            cpu.Gpr(1) = (uint)StringCompare.Index(result, imm);
        }

        cpu.SetStatusFlags(flags);
    }
}
