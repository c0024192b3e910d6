namespace SharpVisor.Emulator;

/// <summary>
/// The handlers that have a flat form (MOV, MOVZX/MOVSX, the two-operand ALU memory forms), by
/// their general form: the same instruction with its memory operand's linear address computed by
/// <see cref="X86Cpu.FlatLinear"/> (no address-size mask, no segment base). The binder picks the
/// flat one for a flat operand (<see cref="InstructionBinder.IsFlat"/>); tier 1 treats both alike
/// (<c>HandlerCatalog</c>).
/// </summary>
internal static unsafe class FlatForms
{
    private static readonly Dictionary<nint, nint> s_byGeneral = Build();

    /// <summary>The (general, flat) pairs.</summary>
    public static IEnumerable<KeyValuePair<nint, nint>> Pairs => s_byGeneral;

    /// <summary>The flat form of <paramref name="handler"/>, or the handler itself when it has none.</summary>
    public static nint Of(nint handler) => s_byGeneral.TryGetValue(handler, out nint flat) ? flat : handler;

    private static Dictionary<nint, nint> Build()
    {
        var pairs = new Dictionary<nint, nint>();
        Move<Size8>(pairs);
        Move<Size16>(pairs);
        Move<Size32>(pairs);
        Move<Size64>(pairs);
        Extend<Size16, Size8>(pairs);
        Extend<Size32, Size8>(pairs);
        Extend<Size64, Size8>(pairs);
        Extend<Size32, Size16>(pairs);
        Extend<Size64, Size16>(pairs);
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size64, Size32>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRMFlat<Size64, Size32>);
        Alu<AddOp>(pairs);
        Alu<OrOp>(pairs);
        Alu<AdcOp>(pairs);
        Alu<SbbOp>(pairs);
        Alu<AndOp>(pairs);
        Alu<SubOp>(pairs);
        Alu<XorOp>(pairs);
        Alu<CmpOp>(pairs);
        Alu<TestOp>(pairs);
        return pairs;
    }

    private static void Alu<TOp>(Dictionary<nint, nint> pairs)
        where TOp : struct, IBinaryOp
    {
        Alu<TOp, Size8>(pairs);
        Alu<TOp, Size16>(pairs);
        Alu<TOp, Size32>(pairs);
        Alu<TOp, Size64>(pairs);
    }

    private static void Alu<TOp, TSize>(Dictionary<nint, nint> pairs)
        where TOp : struct, IBinaryOp
        where TSize : struct, IOperandSize
    {
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.RM<TOp, TSize>, (nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.RMFlat<TOp, TSize>);
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.MR<TOp, TSize>, (nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.MRFlat<TOp, TSize>);
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.MI<TOp, TSize>, (nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.MIFlat<TOp, TSize>);
    }

    private static void Move<TSize>(Dictionary<nint, nint> pairs)
        where TSize : struct, IOperandSize
    {
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRM<TSize>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRMFlat<TSize>);
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMR<TSize>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMRFlat<TSize>);
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMI<TSize>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMIFlat<TSize>);
    }

    private static void Extend<TDst, TSrc>(Dictionary<nint, nint> pairs)
        where TDst : struct, IOperandSize
        where TSrc : struct, IOperandSize
    {
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRM<TDst, TSrc>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRMFlat<TDst, TSrc>);
        pairs.Add((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<TDst, TSrc>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRMFlat<TDst, TSrc>);
    }
}
