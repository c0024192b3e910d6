namespace SharpVisor.Emulator.Translator;

/// <summary>
/// What tier 1 knows about the interpreter's handlers, by handler pointer (the same pointers the
/// binder stores): the forms it emits inline, and the condition of each Jcc. Other handlers are
/// called through their pointer: letting the JIT inline them (a direct call to the generic
/// instantiation) made a Linux boot's compile time several times larger for little gain.
/// </summary>
internal static unsafe class HandlerCatalog
{
    private static readonly Dictionary<nint, InlineForm> s_forms = BuildForms();

    // The condition types of BranchHandlers.JccTable, in condition-code order.
    private static readonly Type[] s_conditions =
    [
        typeof(CondO), typeof(CondNo), typeof(CondB), typeof(CondAe), typeof(CondE), typeof(CondNe), typeof(CondBe), typeof(CondA),
        typeof(CondS), typeof(CondNs), typeof(CondP), typeof(CondNp), typeof(CondL), typeof(CondGe), typeof(CondLe), typeof(CondG),
    ];

    /// <summary>The condition type of a Jcc handler (index in <see cref="BranchHandlers.JccTable"/> = condition code), or null.</summary>
    public static Type? JccCondition(nint handler)
    {
        int cc = Array.IndexOf(BranchHandlers.JccTable, handler);
        return cc < 0 ? null : s_conditions[cc];
    }

    /// <summary>The condition type of condition code <paramref name="cc"/> (Jcc order: O, NO, B, AE, ...).</summary>
    public static Type ConditionType(int cc) => s_conditions[cc];

    public static InlineForm FormOf(nint handler) => s_forms.TryGetValue(handler, out InlineForm form) ? form : default;

    private static Dictionary<nint, InlineForm> BuildForms()
    {
        var forms = new Dictionary<nint, InlineForm>();
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRR<Size32>, new(InlineKind.MovRR, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRR<Size64>, new(InlineKind.MovRR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRI<Size32>, new(InlineKind.MovRI, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRI<Size64>, new(InlineKind.MovRI, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRM<Size32>, new(InlineKind.MovRM, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRM<Size64>, new(InlineKind.MovRM, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMR<Size32>, new(InlineKind.MovMR, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMR<Size64>, new(InlineKind.MovMR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMI<Size32>, new(InlineKind.MovMI, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMI<Size64>, new(InlineKind.MovMI, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.Lea<Size32>, new(InlineKind.Lea, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.Lea<Size64>, new(InlineKind.Lea, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.PushR<Size64>, new(InlineKind.PushR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.PushI<Size64>, new(InlineKind.PushI, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.PopR<Size64>, new(InlineKind.PopR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&ShiftHandlers.RImm<Size32>, new(InlineKind.ShiftRI, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&ShiftHandlers.RImm<Size64>, new(InlineKind.ShiftRI, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&ShiftHandlers.RCl<Size32>, new(InlineKind.ShiftRCl, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&ShiftHandlers.RCl<Size64>, new(InlineKind.ShiftRCl, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.Bswap32, new(InlineKind.BswapR, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.Bswap64, new(InlineKind.BswapR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MulDivHandlers.Div<Size32>, new(InlineKind.DivRM, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MulDivHandlers.Div<Size64>, new(InlineKind.DivRM, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MulDivHandlers.Imul2<Size32>, new(InlineKind.ImulR, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MulDivHandlers.Imul2<Size64>, new(InlineKind.ImulR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRM<Size8>, new(InlineKind.MovRM, 0));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRM<Size16>, new(InlineKind.MovRM, 1));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMR<Size8>, new(InlineKind.MovMR, 0));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMR<Size16>, new(InlineKind.MovMR, 1));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMI<Size8>, new(InlineKind.MovMI, 0));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovMI<Size16>, new(InlineKind.MovMI, 1));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.Nop, new(InlineKind.Nop, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.SetccR, new(InlineKind.SetccR, 0));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.CmovRR<Size16>, new(InlineKind.CmovRR, 1));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.CmovRR<Size32>, new(InlineKind.CmovRR, 2));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.CmovRR<Size64>, new(InlineKind.CmovRR, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&BranchHandlers.CallRel<Size64>, new(InlineKind.CallRel, 3));
        Add(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&BranchHandlers.Ret<Size64>, new(InlineKind.Ret, 3));
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRR<Size16, Size8>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRM<Size16, Size8>, 1, 0, signed: false);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRR<Size32, Size8>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRM<Size32, Size8>, 2, 0, signed: false);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRR<Size64, Size8>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRM<Size64, Size8>, 3, 0, signed: false);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRR<Size32, Size16>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRM<Size32, Size16>, 2, 1, signed: false);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRR<Size64, Size16>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovzxRM<Size64, Size16>, 3, 1, signed: false);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRR<Size16, Size8>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size16, Size8>, 1, 0, signed: true);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRR<Size32, Size8>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size32, Size8>, 2, 0, signed: true);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRR<Size64, Size8>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size64, Size8>, 3, 0, signed: true);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRR<Size32, Size16>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size32, Size16>, 2, 1, signed: true);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRR<Size64, Size16>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size64, Size16>, 3, 1, signed: true);
        AddExtend(forms, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRR<Size64, Size32>, (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovsxRM<Size64, Size32>, 3, 2, signed: true);
        for (int size = 2; size <= 3; size++)
        {
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Inc * 12) + size], new(InlineKind.IncDecR, size, InlineAlu.Add));
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Dec * 12) + size], new(InlineKind.IncDecR, size, InlineAlu.Sub));
        }

        // INC/DEC of memory at every size (the memory forms are the second four of each kind's row).
        for (int size = 0; size <= 3; size++)
        {
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Inc * 12) + 4 + size], new(InlineKind.IncDecM, size, InlineAlu.Add));
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Dec * 12) + 4 + size], new(InlineKind.IncDecM, size, InlineAlu.Sub));
        }

        // NEG and NOT of a register at every size (the register forms are the first four of each kind's row).
        for (int size = 0; size <= 3; size++)
        {
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Neg * 12) + size], new(InlineKind.NegR, size));
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Not * 12) + size], new(InlineKind.NotR, size));
        }

        AddAlu(forms, AluHandlers.Table<AddOp>(), InlineAlu.Add);
        AddAlu(forms, AluHandlers.Table<SubOp>(), InlineAlu.Sub);
        AddAlu(forms, AluHandlers.Table<CmpOp>(), InlineAlu.Cmp);
        AddAlu(forms, AluHandlers.Table<AndOp>(), InlineAlu.And);
        AddAlu(forms, AluHandlers.Table<OrOp>(), InlineAlu.Or);
        AddAlu(forms, AluHandlers.Table<XorOp>(), InlineAlu.Xor);
        AddAlu(forms, AluHandlers.Table<TestOp>(), InlineAlu.Test);

        // ADC and SBB between registers and with an immediate (carry chains: checksums, multi-word
        // arithmetic; CMP then SBB r, r: the kernel's array_index_mask_nospec).
        nint[] adc = AluHandlers.Table<AdcOp>();
        nint[] sbb = AluHandlers.Table<SbbOp>();
        for (int size = 2; size <= 3; size++)
        {
            Add(forms, adc[(AluHandlers.FormRR * 4) + size], new(InlineKind.AluRR, size, InlineAlu.Adc));
            Add(forms, adc[(AluHandlers.FormRI * 4) + size], new(InlineKind.AluRI, size, InlineAlu.Adc));
            Add(forms, sbb[(AluHandlers.FormRR * 4) + size], new(InlineKind.AluRR, size, InlineAlu.Sbb));
            Add(forms, sbb[(AluHandlers.FormRI * 4) + size], new(InlineKind.AluRI, size, InlineAlu.Sbb));
        }

        // A flat form is the same instruction as its general form (the binder's choice of address computation).
        foreach (KeyValuePair<nint, nint> pair in FlatForms.Pairs)
        {
            if (forms.TryGetValue(pair.Key, out InlineForm form))
            {
                Add(forms, pair.Value, form);
            }
        }

        return forms;
    }

    private static void AddAlu(Dictionary<nint, InlineForm> forms, nint[] table, InlineAlu alu)
    {
        for (int size = 0; size <= 3; size++)
        {
            Add(forms, table[(AluHandlers.FormRR * 4) + size], new(InlineKind.AluRR, size, alu));
            Add(forms, table[(AluHandlers.FormRI * 4) + size], new(InlineKind.AluRI, size, alu));
            Add(forms, table[(AluHandlers.FormRM * 4) + size], new(InlineKind.AluRM, size, alu));
            Add(forms, table[(AluHandlers.FormMR * 4) + size], new(InlineKind.AluMR, size, alu));
            Add(forms, table[(AluHandlers.FormMI * 4) + size], new(InlineKind.AluMI, size, alu));
        }
    }

    private static void AddExtend(Dictionary<nint, InlineForm> forms, nint fromRegister, nint fromMemory, int size, int source, bool signed)
    {
        Add(forms, fromRegister, new(InlineKind.ExtendRR, size, InlineAlu.None, source, signed));
        Add(forms, fromMemory, new(InlineKind.ExtendRM, size, InlineAlu.None, source, signed));
    }

    private static void Add(Dictionary<nint, InlineForm> forms, nint handler, InlineForm form) => forms.TryAdd(handler, form);
}
