using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>A condition code as a type, so Jcc/SETcc/CMOVcc handlers specialize and inline the test.</summary>
internal interface ICondition
{
    static abstract bool Evaluate(X86Cpu cpu);
}

/// <summary>Condition evaluation from the lazy flags, with the common CMP/SUB and TEST/logic cases short-cut.</summary>
internal static class ConditionEvaluation
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Zero(X86Cpu cpu) => cpu._lazy == 0 ? (cpu._flags & RflagsBits.Zero) != 0 : cpu._lazyRes == 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Sign(X86Cpu cpu) => cpu._lazy == 0 ? (cpu._flags & RflagsBits.Sign) != 0 : (long)cpu._lazyRes < 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Below(X86Cpu cpu) => (cpu._lazy >> 2) == LazyFlags.Sub ? cpu._lazyA < cpu._lazyB : cpu.CarryFlag;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool BelowOrEqual(X86Cpu cpu) => (cpu._lazy >> 2) == LazyFlags.Sub ? cpu._lazyA <= cpu._lazyB : cpu.CarryFlag || Zero(cpu);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Less(X86Cpu cpu)
    {
        int kind = cpu._lazy >> 2;
        if (kind == LazyFlags.Sub)
        {
            int shift = 64 - (8 << (cpu._lazy & 3));
            return (long)(cpu._lazyA << shift) < (long)(cpu._lazyB << shift);
        }

        if (kind == LazyFlags.Logic)
        {
            return (long)cpu._lazyRes < 0;
        }

        return cpu.SignFlag != cpu.OverflowFlag;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool LessOrEqual(X86Cpu cpu)
    {
        int kind = cpu._lazy >> 2;
        if (kind == LazyFlags.Sub)
        {
            int shift = 64 - (8 << (cpu._lazy & 3));
            return (long)(cpu._lazyA << shift) <= (long)(cpu._lazyB << shift);
        }

        if (kind == LazyFlags.Logic)
        {
            return (long)cpu._lazyRes <= 0 || cpu._lazyRes == 0;
        }

        return cpu.ZeroFlag || cpu.SignFlag != cpu.OverflowFlag;
    }
}

#pragma warning disable SA1649, SA1402 // condition types are tiny and belong together
internal struct CondO : ICondition { public static bool Evaluate(X86Cpu cpu) => cpu.OverflowFlag; }

internal struct CondNo : ICondition { public static bool Evaluate(X86Cpu cpu) => !cpu.OverflowFlag; }

internal struct CondB : ICondition { public static bool Evaluate(X86Cpu cpu) => ConditionEvaluation.Below(cpu); }

internal struct CondAe : ICondition { public static bool Evaluate(X86Cpu cpu) => !ConditionEvaluation.Below(cpu); }

internal struct CondE : ICondition { public static bool Evaluate(X86Cpu cpu) => ConditionEvaluation.Zero(cpu); }

internal struct CondNe : ICondition { public static bool Evaluate(X86Cpu cpu) => !ConditionEvaluation.Zero(cpu); }

internal struct CondBe : ICondition { public static bool Evaluate(X86Cpu cpu) => ConditionEvaluation.BelowOrEqual(cpu); }

internal struct CondA : ICondition { public static bool Evaluate(X86Cpu cpu) => !ConditionEvaluation.BelowOrEqual(cpu); }

internal struct CondS : ICondition { public static bool Evaluate(X86Cpu cpu) => ConditionEvaluation.Sign(cpu); }

internal struct CondNs : ICondition { public static bool Evaluate(X86Cpu cpu) => !ConditionEvaluation.Sign(cpu); }

internal struct CondP : ICondition { public static bool Evaluate(X86Cpu cpu) => cpu.ParityFlag; }

internal struct CondNp : ICondition { public static bool Evaluate(X86Cpu cpu) => !cpu.ParityFlag; }

internal struct CondL : ICondition { public static bool Evaluate(X86Cpu cpu) => ConditionEvaluation.Less(cpu); }

internal struct CondGe : ICondition { public static bool Evaluate(X86Cpu cpu) => !ConditionEvaluation.Less(cpu); }

internal struct CondLe : ICondition { public static bool Evaluate(X86Cpu cpu) => ConditionEvaluation.LessOrEqual(cpu); }

internal struct CondG : ICondition { public static bool Evaluate(X86Cpu cpu) => !ConditionEvaluation.LessOrEqual(cpu); }
#pragma warning restore SA1649, SA1402
