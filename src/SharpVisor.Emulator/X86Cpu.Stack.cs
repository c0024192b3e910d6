using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>Stack accesses through SS with the stack-address size, and control transfers.</summary>
public sealed partial class X86Cpu
{
    internal const int Rsp = 4;
    internal const int Rbp = 5;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Push<TSize>(ulong value)
        where TSize : struct, IOperandSize
    {
        if (_is64)
        {
            // 64-bit mode: SS's base is 0 and the stack pointer is RSP whole; only the canonical check remains.
            ulong top = Gpr(Rsp) - (ulong)TSize.Bytes;
            if (!IsCanonical(top))
            {
                NonCanonical(SegSs);
            }

            TSize.Write(this, top, value);
            Gpr(Rsp) = top;
            return;
        }

        ulong rsp = Gpr(Rsp);
        ulong newRsp = (rsp & ~_stackMask) | ((rsp - (ulong)TSize.Bytes) & _stackMask);
        TSize.Write(this, SegmentLinear(SegSs, newRsp & _stackMask, TSize.Bytes, MemoryAccess.Write), value);
        Gpr(Rsp) = newRsp;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Pop<TSize>()
        where TSize : struct, IOperandSize
    {
        if (_is64)
        {
            ulong top = Gpr(Rsp);
            if (!IsCanonical(top))
            {
                NonCanonical(SegSs);
            }

            ulong popped = TSize.Read(this, top);
            Gpr(Rsp) = top + (ulong)TSize.Bytes;
            return popped;
        }

        ulong rsp = Gpr(Rsp);
        ulong value = TSize.Read(this, SegmentLinear(SegSs, rsp & _stackMask, TSize.Bytes, MemoryAccess.Read));
        Gpr(Rsp) = (rsp & ~_stackMask) | ((rsp + (ulong)TSize.Bytes) & _stackMask);
        return value;
    }

    /// <summary>Reads the stack at RSP + <paramref name="offset"/> without moving RSP.</summary>
    internal ulong PeekStack<TSize>(ulong offset)
        where TSize : struct, IOperandSize =>
        TSize.Read(this, SegmentLinear(SegSs, (Gpr(Rsp) + offset) & _stackMask, TSize.Bytes, MemoryAccess.Read));

    /// <summary>RSP advanced by <paramref name="bytes"/> within the stack-address size.</summary>
    internal ulong StackAdd(ulong rsp, ulong bytes) => (rsp & ~_stackMask) | ((rsp + bytes) & _stackMask);

    /// <summary>Transfers control to <paramref name="target"/> (already truncated to the operand size), with the canonical or CS-limit check.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Jump(ulong target)
    {
        if (_is64 ? !IsCanonical(target) : target > _segs[SegCs].Limit)
        {
            BadJump();
        }

        _rip = target;
        _exitBlock = ExitJump;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadJump() => throw new CpuException(ExceptionVector.GeneralProtection, 0);

    /// <summary>Checks a branch target without jumping (CALL validates before pushing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckJumpTarget(ulong target)
    {
        if (_is64 ? !IsCanonical(target) : target > _segs[SegCs].Limit)
        {
            BadJump();
        }
    }

    /// <summary>RIP of the instruction after <paramref name="op"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong NextIp(ref Op op) => (_regs[RegisterFile.BlockRip] + (ulong)op.NextOffset) & _ipMask;

    /// <summary>RIP of <paramref name="op"/> itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong CurrentIp(ref Op op) => (_regs[RegisterFile.BlockRip] + op.Offset) & _ipMask;
}
