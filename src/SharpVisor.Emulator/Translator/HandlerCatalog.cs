using System.Reflection;

namespace SharpVisor.Emulator.Translator;

/// <summary>
/// What tier 1 knows about the interpreter's handlers, by handler pointer: the forms it emits
/// inline (recognized by the same pointers the binder stores), and for the rest the handler's
/// <see cref="MethodInfo"/>, so translated code calls it directly (the JIT can inline it) instead
/// of through the pointer.
/// </summary>
internal static unsafe class HandlerCatalog
{
    private static readonly Dictionary<nint, InlineForm> s_forms = BuildForms();
    private static readonly Lazy<Dictionary<nint, MethodInfo>> s_methods = new(BuildMethods, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The condition type of a Jcc handler (index in <see cref="BranchHandlers.JccTable"/> = condition code), or null.</summary>
    public static Type? JccCondition(nint handler)
    {
        int cc = Array.IndexOf(BranchHandlers.JccTable, handler);
        return cc < 0 ? null : MethodOf(handler)?.GetGenericArguments()[0];
    }

    public static InlineForm FormOf(nint handler) => s_forms.TryGetValue(handler, out InlineForm form) ? form : default;

    public static MethodInfo? MethodOf(nint handler) => s_methods.Value.TryGetValue(handler, out MethodInfo? method) ? method : null;

    /// <summary>How many handler instantiations were matched to methods (for tests).</summary>
    public static int KnownMethods => s_methods.Value.Count;

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
        for (int size = 2; size <= 3; size++)
        {
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Inc * 12) + size], new(InlineKind.IncDecR, size, InlineAlu.Add));
            Add(forms, UnaryHandlers.Table[(UnaryHandlers.Dec * 12) + size], new(InlineKind.IncDecR, size, InlineAlu.Sub));
        }

        AddAlu(forms, AluHandlers.Table<AddOp>(), InlineAlu.Add);
        AddAlu(forms, AluHandlers.Table<SubOp>(), InlineAlu.Sub);
        AddAlu(forms, AluHandlers.Table<CmpOp>(), InlineAlu.Cmp);
        AddAlu(forms, AluHandlers.Table<AndOp>(), InlineAlu.And);
        AddAlu(forms, AluHandlers.Table<OrOp>(), InlineAlu.Or);
        AddAlu(forms, AluHandlers.Table<XorOp>(), InlineAlu.Xor);
        AddAlu(forms, AluHandlers.Table<TestOp>(), InlineAlu.Test);
        return forms;
    }

    private static void AddAlu(Dictionary<nint, InlineForm> forms, nint[] table, InlineAlu alu)
    {
        bool readsOnly = alu is InlineAlu.Cmp or InlineAlu.Test;
        for (int size = 2; size <= 3; size++)
        {
            Add(forms, table[(AluHandlers.FormRR * 4) + size], new(InlineKind.AluRR, size, alu));
            Add(forms, table[(AluHandlers.FormRI * 4) + size], new(InlineKind.AluRI, size, alu));
            Add(forms, table[(AluHandlers.FormRM * 4) + size], new(InlineKind.AluRM, size, alu));
            if (readsOnly)
            {
                Add(forms, table[(AluHandlers.FormMR * 4) + size], new(InlineKind.AluMR, size, alu));
                Add(forms, table[(AluHandlers.FormMI * 4) + size], new(InlineKind.AluMI, size, alu));
            }
        }
    }

    private static void Add(Dictionary<nint, InlineForm> forms, nint handler, InlineForm form) => forms.TryAdd(handler, form);

    /// <summary>
    /// Every handler method of the Handlers classes, generic ones instantiated over the
    /// operation and size types of this assembly that satisfy their constraints, keyed by the
    /// pointer the binder would store for it.
    /// </summary>
    private static Dictionary<nint, MethodInfo> BuildMethods()
    {
        var methods = new Dictionary<nint, MethodInfo>();
        Type[] types = typeof(X86Cpu).Assembly.GetTypes();
        Type[] valueTypes = types.Where(t => t.IsValueType && !t.IsGenericTypeDefinition && !t.IsEnum && t.GetInterfaces().Length != 0).ToArray();
        foreach (Type owner in types.Where(t => t.IsAbstract && t.IsSealed && t.Name.EndsWith("Handlers", StringComparison.Ordinal)))
        {
            foreach (MethodInfo method in owner.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static))
            {
                ParameterInfo[] parameters = method.GetParameters();
                if (method.ReturnType != typeof(void) || parameters.Length != 2 || parameters[0].ParameterType != typeof(X86Cpu)
                    || parameters[1].ParameterType != typeof(Op).MakeByRefType())
                {
                    continue;
                }

                if (!method.IsGenericMethodDefinition)
                {
                    methods.TryAdd(method.MethodHandle.GetFunctionPointer(), method);
                    continue;
                }

                foreach (MethodInfo instance in Instantiate(method, valueTypes))
                {
                    methods.TryAdd(instance.MethodHandle.GetFunctionPointer(), instance);
                }
            }
        }

        return methods;
    }

    private static IEnumerable<MethodInfo> Instantiate(MethodInfo definition, Type[] valueTypes)
    {
        Type[] parameters = definition.GetGenericArguments();
        var candidates = new Type[parameters.Length][];
        long combinations = 1;
        for (int i = 0; i < parameters.Length; i++)
        {
            Type[] constraints = parameters[i].GetGenericParameterConstraints().Where(c => c.IsInterface).ToArray();
            candidates[i] = valueTypes.Where(t => constraints.All(c => c.IsAssignableFrom(t))).ToArray();
            combinations *= candidates[i].Length;
        }

        if (combinations is 0 or > 4096)
        {
            yield break;
        }

        var arguments = new Type[parameters.Length];
        for (long n = 0; n < combinations; n++)
        {
            long rest = n;
            for (int i = 0; i < parameters.Length; i++)
            {
                arguments[i] = candidates[i][rest % candidates[i].Length];
                rest /= candidates[i].Length;
            }

            MethodInfo? instance;
            try
            {
                instance = definition.MakeGenericMethod(arguments);
            }
            catch (ArgumentException)
            {
                instance = null;
            }

            if (instance is not null)
            {
                yield return instance;
            }
        }
    }
}
