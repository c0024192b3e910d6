using System.Buffers.Binary;
using System.Numerics;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator.Translator;

/// <summary>
/// Tier 1: compiles a decoded <see cref="Block"/> (the front end's form, shared with the
/// interpreter) into one CIL method. The guest GPRs the block touches live in locals across
/// instructions (loaded on first use, written back before anything that can observe them: a
/// handler call, a fault, the block's exit). The common integer forms (<see cref="InlineForm"/>)
/// are emitted inline with the operands of their <see cref="Op"/> as constants, memory accesses
/// through the software TLB's hit check; everything else, and every TLB miss, calls the
/// interpreter's handler for the whole instruction with the registers written back first, so a
/// fault leaves exactly the state the interpreter would (RIP from <see cref="X86Cpu._opIndex"/>).
/// </summary>
internal static unsafe class BlockTranslator
{
    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;

    private static readonly FieldInfo s_regs = Field("_regs");
    private static readonly FieldInfo s_segBase = Field("_segBase");
    private static readonly FieldInfo s_opIndex = Field("_opIndex");
    private static readonly FieldInfo s_exitBlock = Field("_exitBlock");
    private static readonly FieldInfo s_lazy = Field("_lazy");
    private static readonly FieldInfo s_lazyA = Field("_lazyA");
    private static readonly FieldInfo s_lazyB = Field("_lazyB");
    private static readonly FieldInfo s_lazyRes = Field("_lazyRes");
    private static readonly FieldInfo s_lazyCarry = Field("_lazyCarry");
    private static readonly FieldInfo s_rip = Field("_rip");
    private static readonly FieldInfo s_cpl = Field("_cpl");
    private static readonly FieldInfo s_blockField = Field("_block");
    private static readonly MethodInfo s_retireInto = typeof(X86Cpu).GetMethod(nameof(X86Cpu.RetireIntoRegionBlock), Instance)!;
    private static readonly MethodInfo s_retireLoop = typeof(X86Cpu).GetMethod(nameof(X86Cpu.RetireIntoRegionLoop), Instance)!;
    private static readonly FieldInfo s_chainEpoch = Field("_chainEpoch");
    private static readonly MethodInfo s_enterRegion = typeof(X86Cpu).GetMethod(nameof(X86Cpu.EnterRegionBlock), Instance)!;
    private static readonly MethodInfo s_blockOps = typeof(Block).GetProperty(nameof(Block.Ops))!.GetMethod!;
    private static readonly MethodInfo s_carryFlag = typeof(X86Cpu).GetProperty("CarryFlag", Instance)!.GetMethod!;
    private static readonly MethodInfo s_continueLoop = typeof(X86Cpu).GetMethod(nameof(X86Cpu.ContinueTranslatedLoop), Instance)!;
    private static readonly FieldInfo s_tlb = Field("_tlb");
    private static readonly FieldInfo s_tlbEntries = Field("_tlbEntries");
    private static readonly FieldInfo s_tlbSlotMask = Field("_tlbSlotMask");
    private static readonly FieldInfo s_tlbContextBase = Field("_tlbContextBase");
    private static readonly FieldInfo s_tlbStamp = typeof(SoftTlb).GetField("_stamp", Instance) ?? throw new MissingFieldException(nameof(SoftTlb), "_stamp");
    private static readonly FieldInfo s_entryReadTag = typeof(TlbEntry).GetField(nameof(TlbEntry.ReadTag))!;
    private static readonly FieldInfo s_entryWriteTag = typeof(TlbEntry).GetField(nameof(TlbEntry.WriteTag))!;
    private static readonly FieldInfo s_entryAddend = typeof(TlbEntry).GetField(nameof(TlbEntry.Addend))!;
    private static readonly MethodInfo s_arrayData = typeof(MemoryMarshal).GetMethod(
        nameof(MemoryMarshal.GetArrayDataReference), 1, [Type.MakeGenericMethodParameter(0).MakeArrayType()])!.MakeGenericMethod(typeof(TlbEntry));
    private static readonly MethodInfo s_bigMul = typeof(Math).GetMethod(nameof(Math.BigMul), [typeof(long), typeof(long), typeof(long).MakeByRefType()])!;
    private static readonly MethodInfo s_rotateLeft32 = typeof(BitOperations).GetMethod(nameof(BitOperations.RotateLeft), [typeof(uint), typeof(int)])!;
    private static readonly MethodInfo s_rotateLeft64 = typeof(BitOperations).GetMethod(nameof(BitOperations.RotateLeft), [typeof(ulong), typeof(int)])!;
    private static readonly MethodInfo s_rotateRight32 = typeof(BitOperations).GetMethod(nameof(BitOperations.RotateRight), [typeof(uint), typeof(int)])!;
    private static readonly MethodInfo s_rotateRight64 = typeof(BitOperations).GetMethod(nameof(BitOperations.RotateRight), [typeof(ulong), typeof(int)])!;
    private static readonly MethodInfo s_byteSwap32 = typeof(BinaryPrimitives).GetMethod(nameof(BinaryPrimitives.ReverseEndianness), [typeof(uint)])!;
    private static readonly MethodInfo s_byteSwap64 = typeof(BinaryPrimitives).GetMethod(nameof(BinaryPrimitives.ReverseEndianness), [typeof(ulong)])!;
    private static readonly MethodInfo s_updateStatusFlags = typeof(X86Cpu).GetMethod(nameof(X86Cpu.UpdateStatusFlags), Instance)!;
    private static readonly MethodInfo s_setMulFlags = typeof(MulDivHandlers).GetMethod(nameof(MulDivHandlers.SetMulFlagsOf), BindingFlags.Static | BindingFlags.NonPublic)!;
    private static readonly MethodInfo s_resultFlags = typeof(X86Cpu).GetMethod(nameof(X86Cpu.ResultFlags), BindingFlags.Static | BindingFlags.NonPublic)!;
    private static readonly MethodInfo s_setStatusFlags = typeof(X86Cpu).GetMethod(nameof(X86Cpu.SetStatusFlags), Instance)!;
    private static readonly MethodInfo s_profileCount = typeof(Tier1CallProfile).GetMethod(nameof(Tier1CallProfile.Count))!;
    private static readonly MethodInfo? s_methodDescriptor = typeof(DynamicMethod).GetMethod("GetMethodDescriptor", Instance);
    private static readonly Type[] s_parameters = [typeof(X86Cpu), typeof(Op).MakeByRefType()];

    // The compiled method's parameters: the region's blocks, its entry first (the delegate is
    // closed over them, so a call is direct, with no argument-shuffling stub), the CPU and the
    // entry block's first op.
    private static readonly Type[] s_methodParameters = [typeof(Block[]), typeof(X86Cpu), typeof(Op).MakeByRefType()];
    private static int s_serial;

    // The handlers called for ops without a usable inline form (not on TLB-miss paths) in the code
    // this thread compiled: lets tests see that a form was emitted inline (tier Always compiles on
    // the vCPU's thread).
    [ThreadStatic]
    private static HashSet<nint>? t_calledHandlers;

    /// <summary>The handlers that code compiled on this thread calls for ops not emitted inline (tests clear it).</summary>
    internal static HashSet<nint> CalledHandlersOnThisThread => t_calledHandlers ??= [];

    private static FieldInfo Field(string name) =>
        typeof(X86Cpu).GetField(name, Instance) ?? throw new MissingFieldException(nameof(X86Cpu), name);

    /// <summary>Emits and compiles the block's method.</summary>
    public static TranslatedBlock Translate(Block block, bool withRegion, out int ilBytes, out int members)
    {
        var method = new DynamicMethod($"tier1_{Interlocked.Increment(ref s_serial)}_{block.PhysicalAddress:x}", typeof(int), s_methodParameters, typeof(X86Cpu).Module, skipVisibility: true)
        {
            // Every local is stored before it is read (the emitter loads a register on first use).
            InitLocals = false,
        };
        Block[] region = withRegion ? SelectRegion(block) : [block];
        members = region.Length;
        int ops = 0;
        foreach (Block member in region)
        {
            ops += member.Count;
        }

        ILGenerator il = method.GetILGenerator(256 + (ops * 96));
        new Emitter(region, il).Emit();
        ilBytes = il.ILOffset;
        // Compiled before the delegate is made, so that the delegate points at the code: made
        // first, it points at the method's precode stub, one more jump on every call.
        Precompile(method);
        return (TranslatedBlock)method.CreateDelegate(typeof(TranslatedBlock), region);
    }

    /// <summary>
    /// The blocks compiled with <paramref name="entry"/> into one method (a region; the entry
    /// first): in 64-bit code, the successors the run loop has linked (<see cref="Block.Next"/>,
    /// <see cref="Block.NextOther"/>), breadth first, that are hot (queued for tier 1 or near the
    /// threshold), valid, decoded in the same mode from the same physical page as the entry and
    /// within it (so the entry's translation, checked when the chain loop found it, is theirs),
    /// up to <see cref="TranslatorSettings.RegionBlocks"/> blocks and 256 instructions. The
    /// successor links may change under the compiler thread: a stale one is a block that once
    /// followed, still identified by its physical address, and checked again when entered.
    /// </summary>
    internal static Block[] SelectRegion(Block entry)
    {
        int limit = TranslatorSettings.RegionBlocks;
        if (limit <= 1 || (CpuMode)(entry.Key & 7) != CpuMode.Long64 || entry.SecondPage != ulong.MaxValue)
        {
            return [entry];
        }

        var members = new List<Block> { entry };
        int ops = entry.Count;
        for (int j = 0; j < members.Count && members.Count < limit; j++)
        {
            Block from = members[j];
            TryAdd(from.Next);
            TryAdd(from.NextOther);
        }

        return members.ToArray();

        void TryAdd(Block? candidate)
        {
            if (candidate is null || members.Count >= limit || !candidate.Valid || ops + candidate.Count > 256
                || (candidate.Key & 7) != (entry.Key & 7) || candidate.SecondPage != ulong.MaxValue
                || (candidate.PhysicalAddress & ~0xFFFUL) != (entry.PhysicalAddress & ~0xFFFUL)
                || (!candidate.TranslationQueued && candidate.Heat * 4L < TranslatorSettings.HotThreshold))
            {
                return;
            }

            foreach (Block member in members)
            {
                if (member.PhysicalAddress == candidate.PhysicalAddress)
                {
                    return;
                }
            }

            members.Add(candidate);
            ops += candidate.Count;
        }
    }

    /// <summary>Whether the runtime lets the compiler thread have the JIT compile a dynamic method (else it is compiled at its first call).</summary>
    public static bool CanPrecompile => s_methodDescriptor is not null;

    /// <summary>Has the JIT compile the method now (on the compiling thread), not at its first call on the vCPU.</summary>
    private static void Precompile(DynamicMethod method)
    {
        try
        {
            if (s_methodDescriptor?.Invoke(method, null) is RuntimeMethodHandle handle)
            {
                RuntimeHelpers.PrepareMethod(handle);
            }
        }
        catch (Exception e) when (e is TargetInvocationException or NotSupportedException or InvalidOperationException or MemberAccessException)
        {
            // A runtime without the hook: the method is compiled at its first call instead.
        }
    }

    private enum Cached : byte
    {
        Unknown,
        Clean,
        Dirty,
    }

    private sealed class Emitter
    {
        private const int Slots = RegisterFile.Slots;
        private const int Rax = 0;
        private const int Rcx = 1;
        private const int Rdx = 2;

        private readonly Block[] _region;
        private readonly long[] _offsets;
        private readonly ILGenerator _il;
        private readonly bool _is64;
        private readonly LocalBuilder?[] _locals = new LocalBuilder?[Slots];
        private readonly Cached[] _state = new Cached[Slots];

        // The register state where the last TLB check branched to its miss path: the locals loaded
        // by then hold their registers on that path too.
        private readonly Cached[] _stateAtMiss = new Cached[Slots];
        private readonly LocalBuilder _regsRef;
        private readonly LocalBuilder _a;
        private readonly LocalBuilder _b;
        private readonly LocalBuilder _r;
        private readonly LocalBuilder _linear;
        private readonly LocalBuilder _host;
        private readonly LocalBuilder _entry;
        private readonly LocalBuilder _t;
        private readonly LocalBuilder _count;

        // The last flag producer is an inline op whose operands and result are still in _a/_b/_r
        // (kind LazyFlags.*, or None): a Jcc right after it tests them without the lazy state.
        private int _flagsKind;
        private int _flagsSize;

        // The block being emitted (the region's member _member) and, in a region, the entry
        // state its edges check (EnterRegionBlock) and the register state at every member's start.
        private Block _block;
        private int _member;
        private LocalBuilder? _entryRip;
        private LocalBuilder? _entryCpl;
        private LocalBuilder? _entryEpoch;
        private LocalBuilder? _memberBlock;
        private LocalBuilder? _slowPathRan;
        private bool _handlerInMember;

        // Every path to the code being emitted has made this member X86Cpu._block (EmitSyncBlock
        // on the member's straight-line path, not only in a TLB miss's branch): no other store
        // is needed until the member ends.
        private bool _blockStored;
        private Label[] _memberLabels = [];

        public Emitter(Block[] region, ILGenerator il)
        {
            _region = region;
            _block = region[0];
            _offsets = new long[region.Length];
            for (int k = 0; k < region.Length; k++)
            {
                _offsets[k] = (long)(region[k].PhysicalAddress - region[0].PhysicalAddress);
            }

            _il = il;
            _is64 = (CpuMode)(_block.Key & 7) == CpuMode.Long64;
            _regsRef = il.DeclareLocal(typeof(ulong).MakeByRefType());
            _a = il.DeclareLocal(typeof(ulong));
            _b = il.DeclareLocal(typeof(ulong));
            _r = il.DeclareLocal(typeof(ulong));
            _linear = il.DeclareLocal(typeof(ulong));
            _host = il.DeclareLocal(typeof(nint));
            _entry = il.DeclareLocal(typeof(TlbEntry).MakeByRefType());
            _t = il.DeclareLocal(typeof(ulong));
            _count = il.DeclareLocal(typeof(int));
        }

        public void Emit()
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldflda, s_regs);
            _il.Emit(OpCodes.Stloc, _regsRef);
            if (IsRegion)
            {
                EmitRegion();
                return;
            }

            Op[] ops = _block.Ops;
            int count = _block.Count;
            Type? loopCondition = SelfLoopCondition(ops, count);
            if (loopCondition is null)
            {
                for (int i = 0; i < count; i++)
                {
                    EmitOp(ops, i);
                }

                SpillAll(markClean: true);
                _il.Emit(OpCodes.Ldc_I4, count);
                _il.Emit(OpCodes.Ret);
                return;
            }

            // A block whose Jcc jumps back to its start: the loop runs inside the method with the
            // registers it uses kept in locals across iterations.
            bool[] used = UsedSlots(ops, count);
            for (int slot = 0; slot < 16; slot++)
            {
                if (used[slot])
                {
                    LoadReg(slot, 3);
                    _il.Emit(OpCodes.Pop);
                    _state[slot] = Cached.Dirty;
                }
            }

            Cached[] head = (Cached[])_state.Clone();
            Label top = _il.DefineLabel();
            _il.MarkLabel(top);
            for (int i = 0; i < count - 1; i++)
            {
                EmitOp(ops, i);
            }

            Label notTaken = _il.DefineLabel();
            EmitCondition(Array.IndexOf(BranchHandlers.JccTable, (nint)ops[count - 1].Handler));
            _il.Emit(OpCodes.Brfalse, notTaken);

            // Taken: go round again if the interpreter's in-place loop would (budget, stop, boundary).
            Label leave = _il.DefineLabel();
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ldelem_Ref);
            _il.Emit(OpCodes.Ldc_I4, count);
            _il.Emit(OpCodes.Call, s_continueLoop);
            _il.Emit(OpCodes.Brfalse, leave);
            for (int slot = 0; slot < 16; slot++)
            {
                if (head[slot] != Cached.Unknown && _state[slot] == Cached.Unknown)
                {
                    LoadFromFile(slot);
                    _il.Emit(OpCodes.Stloc, Local(slot));
                }
            }

            _il.Emit(OpCodes.Br, top);
            _il.MarkLabel(leave);
            SpillAll(markClean: false);
            _il.Emit(OpCodes.Ldarg_1);
            LoadFromFile(RegisterFile.BlockRip);
            _il.Emit(OpCodes.Stfld, s_rip);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, X86Cpu.ExitJump);
            _il.Emit(OpCodes.Stfld, s_exitBlock);
            _il.Emit(OpCodes.Ldc_I4, count);
            _il.Emit(OpCodes.Ret);
            _il.MarkLabel(notTaken);
            SpillAll(markClean: true);
            _il.Emit(OpCodes.Ldc_I4, count);
            _il.Emit(OpCodes.Ret);
        }

        private bool IsRegion => _region.Length > 1;

        /// <summary>
        /// A region: the members one after another, each starting at its label with the guest
        /// registers in the register file (the dirty locals are written back at the edge). An edge to a member — a
        /// taken inline branch, the fall-through at a block's end, a handler's jump (CALL, RET,
        /// indirect JMP) whose target is one — goes through <see cref="X86Cpu.EnterRegionBlock"/>
        /// (the chain loop's checks between two blocks) and on at the member's label; if the
        /// checks fail, or the target is not a member, the method leaves as a single block would.
        /// </summary>
        private void EmitRegion()
        {
            _entryRip = _il.DeclareLocal(typeof(ulong));
            _entryCpl = _il.DeclareLocal(typeof(int));
            _entryEpoch = _il.DeclareLocal(typeof(int));
            _memberBlock = _il.DeclareLocal(typeof(Block));
            _slowPathRan = _il.DeclareLocal(typeof(bool));
            LoadFromFile(RegisterFile.BlockRip);
            _il.Emit(OpCodes.Stloc, _entryRip);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_cpl);
            _il.Emit(OpCodes.Stloc, _entryCpl);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_chainEpoch);
            _il.Emit(OpCodes.Stloc, _entryEpoch);

            _memberLabels = new Label[_region.Length];
            for (int k = 0; k < _region.Length; k++)
            {
                _memberLabels[k] = _il.DefineLabel();
            }

            for (int k = 0; k < _region.Length; k++)
            {
                _member = k;
                _block = _region[k];
                _il.MarkLabel(_memberLabels[k]);
                Array.Clear(_state);
                _flagsKind = LazyFlags.None;
                _handlerInMember = false;
                _blockStored = false;
                Op[] ops = _block.Ops;
                int count = _block.Count;
                for (int i = 0; i < count; i++)
                {
                    EmitOp(ops, i);
                }

                int fallThrough = MemberAt(_offsets[k] + ops[count - 1].NextOffset);
                if (fallThrough >= 0)
                {
                    EmitRegionEdge(fallThrough, count, afterHandler: false);
                }
                else
                {
                    SpillAll(markClean: true);
                    EmitReturn(count);
                }
            }
        }

        /// <summary>
        /// Returns <paramref name="count"/> (the current block's instructions retired). From a
        /// region's other member the CPU's running block is first made that member: no edge
        /// stores it (see <see cref="EmitRegionEdge"/>), and the chain loop reads it when the
        /// block's address moved. The entry member needs no store: the chain loop knows it.
        /// </summary>
        private void EmitReturn(int count)
        {
            if (_member != 0 && !_blockStored)
            {
                EmitSyncBlock();
            }

            _il.Emit(OpCodes.Ldc_I4, count);
            _il.Emit(OpCodes.Ret);
        }

        /// <summary>
        /// X86Cpu._block = the member being emitted, before a handler call (the only code that
        /// reads it while the block runs: a fault, a code write, a diagnostic; the chain loop
        /// does not store it for every block it runs). On the straight-line path it is stored
        /// only if it is another block (a reference store is a GC write barrier, and a self-loop
        /// passes here every iteration); in a TLB miss's branch, which is rare and would otherwise
        /// add a branch to every inline memory access, always.
        /// </summary>
        private void EmitSyncBlock(bool onlyIfChanged = true)
        {
            if (!onlyIfChanged)
            {
                _il.Emit(OpCodes.Ldarg_1);
                _il.Emit(OpCodes.Ldarg_0);
                _il.Emit(OpCodes.Ldc_I4, _member);
                _il.Emit(OpCodes.Ldelem_Ref);
                _il.Emit(OpCodes.Stfld, s_blockField);
                return;
            }

            _memberBlock ??= _il.DeclareLocal(typeof(Block));
            Label same = _il.DefineLabel();
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Ldc_I4, _member);
            _il.Emit(OpCodes.Ldelem_Ref);
            _il.Emit(OpCodes.Stloc, _memberBlock!);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_blockField);
            _il.Emit(OpCodes.Ldloc, _memberBlock!);
            _il.Emit(OpCodes.Beq, same);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, _memberBlock!);
            _il.Emit(OpCodes.Stfld, s_blockField);
            _il.MarkLabel(same);
        }

        /// <summary>The member that starts <paramref name="offset"/> bytes after the entry, or -1.</summary>
        private int MemberAt(long offset)
        {
            return Array.IndexOf(_offsets, offset);
        }

        /// <summary>
        /// An edge to member <paramref name="target"/> after <paramref name="retired"/> instructions
        /// of the current block: into it if <see cref="X86Cpu.EnterRegionBlock"/> (or, on a light
        /// edge, <see cref="X86Cpu.RetireIntoRegionBlock"/>) allows, else out of the method with RIP at the target.
        /// After a handler call (<paramref name="afterHandler"/>) the register file holds every
        /// register and the handler has set RIP and the exit; on a branch the locals are current.
        /// </summary>
        private void EmitRegionEdge(int target, int retired, bool afterHandler)
        {
            Label refused = _il.DefineLabel();
            if (afterHandler || _handlerInMember)
            {
                // A handler ran since the last full check: it may have changed anything the chain
                // loop watches (mode, privilege, TLB, events, debug state), so all the checks.
                EmitFullEdgeCheck(target, retired);
                _il.Emit(OpCodes.Brfalse, refused);
            }
            else
            {
                // Inline code only since the last full check (unless a TLB miss ran a handler:
                // _slowPathRan), so nothing this thread changes can need the chain loop. A back
                // edge (every cycle in the region has one) also looks at what other threads
                // request; a forward edge only at the budget.
                Label full = _il.DefineLabel();
                Label entered = _il.DefineLabel();
                _il.Emit(OpCodes.Ldloc, _slowPathRan!);
                _il.Emit(OpCodes.Brtrue, full);
                _il.Emit(OpCodes.Ldarg_1);
                EmitTargetLinear(target);
                _il.Emit(OpCodes.Ldc_I4, retired);
                _il.Emit(OpCodes.Ldc_I4, _region[target].Count);
                _il.Emit(OpCodes.Call, target <= _member ? s_retireLoop : s_retireInto);
                _il.Emit(OpCodes.Brfalse, refused);
                _il.Emit(OpCodes.Br, entered);
                _il.MarkLabel(full);
                EmitFullEdgeCheck(target, retired);
                _il.Emit(OpCodes.Brfalse, refused);
                _il.Emit(OpCodes.Ldc_I4_0);
                _il.Emit(OpCodes.Stloc, _slowPathRan!);
                _il.MarkLabel(entered);
            }


            // Every member starts with the registers in the file (loaded again on first use):
            // short live ranges keep the JIT fast, and a load is cheaper than a return to the loop.
            if (!afterHandler)
            {
                SpillAll(markClean: false);
            }

            _il.Emit(OpCodes.Br, _memberLabels[target]);
            _il.MarkLabel(refused);
            if (!afterHandler)
            {
                SpillAll(markClean: false);
                _il.Emit(OpCodes.Ldarg_1);
                EmitTargetLinear(target);
                _il.Emit(OpCodes.Stfld, s_rip);
                _il.Emit(OpCodes.Ldarg_1);
                _il.Emit(OpCodes.Ldc_I4, X86Cpu.ExitJump);
                _il.Emit(OpCodes.Stfld, s_exitBlock);
            }

            EmitReturn(retired);
        }

        /// <summary>Pushes whether <see cref="X86Cpu.EnterRegionBlock"/> lets the code go on into member <paramref name="target"/>.</summary>
        private void EmitFullEdgeCheck(int target, int retired)
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Ldc_I4, target);
            _il.Emit(OpCodes.Ldelem_Ref);
            EmitTargetLinear(target);
            _il.Emit(OpCodes.Ldc_I4, retired);
            _il.Emit(OpCodes.Ldloc, _entryCpl!);
            _il.Emit(OpCodes.Ldloc, _entryEpoch!);
            _il.Emit(OpCodes.Call, s_enterRegion);
        }

        private void EmitTargetLinear(int target)
        {
            _il.Emit(OpCodes.Ldloc, _entryRip!);
            if (_offsets[target] != 0)
            {
                _il.Emit(OpCodes.Ldc_I8, _offsets[target]);
                _il.Emit(OpCodes.Add);
            }
        }

        /// <summary>
        /// After the last op's handler asked to leave: a jump (<see cref="X86Cpu.ExitJump"/>) to a
        /// member the block was seen to go to goes on there (a RET to the block after a CALL in
        /// the region, a CALL into it); anything else falls through to the method's exit.
        /// </summary>
        private void EmitHandlerJumpDispatch(int i)
        {
            Label leave = _il.DefineLabel();
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_exitBlock);
            _il.Emit(OpCodes.Ldc_I4, X86Cpu.ExitJump);
            _il.Emit(OpCodes.Bne_Un, leave);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_rip);
            _il.Emit(OpCodes.Ldloc, _entryRip!);
            _il.Emit(OpCodes.Sub);
            _il.Emit(OpCodes.Stloc, _t);
            for (int m = 0; m < _region.Length; m++)
            {
                // Only the successors the run loop saw (the links the region was built from).
                if (!ReferenceEquals(_region[m], _block.Next) && !ReferenceEquals(_region[m], _block.NextOther))
                {
                    continue;
                }

                Label other = _il.DefineLabel();
                _il.Emit(OpCodes.Ldloc, _t);
                _il.Emit(OpCodes.Ldc_I8, _offsets[m]);
                _il.Emit(OpCodes.Bne_Un, other);
                EmitRegionEdge(m, i + 1, afterHandler: true);
                _il.MarkLabel(other);
            }

            _il.MarkLabel(leave);
        }

        /// <summary>The condition type when the block ends with a Jcc to its own start (64-bit operand size), else null.</summary>
        private Type? SelfLoopCondition(Op[] ops, int count)
        {
            ref Op last = ref ops[count - 1];
            if (!_is64 || count < 2 || last.Imm != 0 || last.OpSize != 8)
            {
                return null;
            }

            return HandlerCatalog.JccCondition((nint)last.Handler);
        }

        /// <summary>GPR slots the block's inline forms read or write (preloaded for a self-loop).</summary>
        private bool[] UsedSlots(Op[] ops, int count)
        {
            var used = new bool[Slots];
            for (int i = 0; i < count; i++)
            {
                ref Op op = ref ops[i];
                InlineForm form = HandlerCatalog.FormOf((nint)op.Handler);
                if (!CanInline(in op, form))
                {
                    continue;
                }

                used[op.Reg / 8 & 15] = true;
                if (form.Kind is InlineKind.MovRR or InlineKind.AluRR or InlineKind.ImulR or InlineKind.ExtendRR or InlineKind.CmovRR)
                {
                    used[op.Rm / 8 & 15] = true;
                }

                if (op.Base < 16)
                {
                    used[op.Base] = true;
                }

                if (op.Index < 16)
                {
                    used[op.Index] = true;
                }

                if (form.Kind is InlineKind.PushR or InlineKind.PushI or InlineKind.PopR or InlineKind.CallRel or InlineKind.Ret)
                {
                    used[X86Cpu.Rsp] = true;
                }

                if (form.Kind == InlineKind.ShiftRCl)
                {
                    used[Rcx] = true;
                }

                if (form.Kind == InlineKind.DivRM)
                {
                    used[Rax] = used[Rdx] = true;
                    if ((op.Flags & OpFlags.Memory) == 0)
                    {
                        used[op.Rm / 8 & 15] = true;
                    }
                }
            }

            return used;
        }

        private void EmitOp(Op[] ops, int i)
        {
            ref Op op = ref ops[i];
            if (EmitBranch(in op, i))
            {
                return;
            }

            InlineForm form = HandlerCatalog.FormOf((nint)op.Handler);
            if (form.Kind is InlineKind.SetccR or InlineKind.CmovRR && CanInline(in op, form))
            {
                // Flag readers that write no flags and leave _a/_b/_r alone: a later Jcc can still
                // take its condition from the producer's locals.
                EmitConditionalMove(in op, form);
                return;
            }

            if (form.Kind is InlineKind.NotR or InlineKind.BswapR && CanInline(in op, form))
            {
                // No flags written and _a/_b/_r left alone, as above.
                EmitNotOrByteSwap(in op, form);
                return;
            }

            _flagsKind = LazyFlags.None;
            if (!CanInline(in op, form))
            {
                EmitHandlerCall(in op, i, form.Kind == InlineKind.None ? Tier1CallReason.NoForm : Tier1CallReason.NotInlinable);
                return;
            }

            bool flagsLive = FlagsLiveAfter(ops, i);
            switch (form.Kind)
            {
                case InlineKind.MovRR:
                    LoadReg(op.Rm / 8, form.SizeIndex);
                    StoreReg(op.Reg / 8, form.SizeIndex);
                    break;
                case InlineKind.MovRI:
                    _il.Emit(OpCodes.Ldc_I8, (long)Truncate(op.Imm, form.SizeIndex));
                    StoreReg(op.Reg / 8, 3);
                    break;
                case InlineKind.Lea:
                    EmitEffectiveAddress(in op);
                    StoreReg(op.Reg / 8, form.SizeIndex);
                    break;
                case InlineKind.AluRR:
                    LoadReg(op.Reg / 8, form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _a);
                    LoadReg(op.Rm / 8, form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _b);
                    EmitAlu(in op, form, flagsLive);
                    NoteFlagsInLocals(form);
                    break;
                case InlineKind.AluRI:
                    LoadReg(op.Reg / 8, form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _a);
                    _il.Emit(OpCodes.Ldc_I8, (long)Truncate(op.Imm, form.SizeIndex));
                    _il.Emit(OpCodes.Stloc, _b);
                    EmitAlu(in op, form, flagsLive);
                    NoteFlagsInLocals(form);
                    break;
                case InlineKind.ImulR:
                    EmitImul(in op, form, flagsLive);
                    break;
                case InlineKind.ShiftRI:
                    EmitShiftByConstant(in op, form, flagsLive);
                    break;
                case InlineKind.ShiftRCl:
                    EmitShiftByCl(in op, form, flagsLive);
                    break;
                case InlineKind.NegR:
                    EmitNeg(in op, form, flagsLive);
                    break;
                case InlineKind.Nop:
                    break;
                case InlineKind.ExtendRR:
                    LoadReg(op.Rm / 8, 3);
                    EmitExtend(form.SourceIndex, form.Signed);
                    StoreReg(op.Reg / 8, form.SizeIndex);
                    break;
                case InlineKind.IncDecR:
                    EmitIncDec(in op, form);
                    _flagsKind = form.Alu == InlineAlu.Add ? LazyFlags.Inc : LazyFlags.Dec;
                    _flagsSize = form.SizeIndex;
                    break;
                default:
                    EmitMemoryForm(in op, i, form, flagsLive);
                    break;
            }
        }

        /// <summary>Inline forms need whole 64-bit register slots; memory and stack forms need 64-bit mode (no segment checks).</summary>
        private bool CanInline(in Op op, InlineForm form)
        {
            if (form.Kind == InlineKind.None || (op.Flags & OpFlags.Lock) != 0)
            {
                return false;
            }

            bool regOk = op.Reg % 8 == 0 && op.Reg < 128;
            bool rmOk = op.Rm % 8 == 0 && op.Rm < 128;
            return form.Kind switch
            {
                InlineKind.MovRR or InlineKind.AluRR or InlineKind.ExtendRR or InlineKind.CmovRR => regOk && rmOk,
                InlineKind.Nop => true,
                InlineKind.SetccR => regOk,
                InlineKind.ImulR => regOk && rmOk && (op.Flags & OpFlags.Memory) == 0,
                InlineKind.ShiftRI or InlineKind.ShiftRCl => regOk && op.Aux is not (ShiftSemantics.Rcl or ShiftSemantics.Rcr),
                InlineKind.MovRI or InlineKind.AluRI or InlineKind.IncDecR or InlineKind.NegR or InlineKind.NotR or InlineKind.BswapR => regOk,
                InlineKind.DivRM => (op.Flags & OpFlags.Memory) != 0 ? _is64 && AddressOk(in op) : rmOk,
                InlineKind.Lea => regOk && AddressOk(in op),
                InlineKind.MovRM or InlineKind.MovMR or InlineKind.AluRM or InlineKind.AluMR or InlineKind.ExtendRM
                    => _is64 && regOk && AddressOk(in op),
                InlineKind.MovMI or InlineKind.AluMI or InlineKind.IncDecM => _is64 && AddressOk(in op),

                // The stack forms have no address operand (RSP, 64-bit in 64-bit mode).
                InlineKind.PushR or InlineKind.PopR => _is64 && regOk,
                InlineKind.PushI => _is64,
                InlineKind.CallRel => _is64 && op.OpSize == 8,
                InlineKind.Ret => _is64,
                _ => false,
            };
        }

        private static bool AddressOk(in Op op) =>
            op.Base < Slots && op.Index < Slots && op.AddrSize is 2 or 4 or 8 && op.Seg <= 6;

        /// <summary>
        /// Whether the flags op <paramref name="i"/> writes can be observed: not when the next flag
        /// writer overwrites all of them and nothing before it can fault, exit or read flags.
        /// </summary>
        private bool FlagsLiveAfter(Op[] ops, int i)
        {
            // A rotate writes only CF and OF, which the next rotate by a non-zero count overwrites.
            bool rotate = IsRotateByConstant(in ops[i], HandlerCatalog.FormOf((nint)ops[i].Handler));
            for (int j = i + 1; j < _block.Count; j++)
            {
                InlineForm next = HandlerCatalog.FormOf((nint)ops[j].Handler);
                if (!CanInline(in ops[j], next))
                {
                    return true;
                }

                switch (next.Kind)
                {
                    case InlineKind.AluRR when next.Alu is not (InlineAlu.Adc or InlineAlu.Sbb):
                    case InlineKind.AluRI when next.Alu is not (InlineAlu.Adc or InlineAlu.Sbb):
                    case InlineKind.ImulR:
                    case InlineKind.NegR:
                        // Writers of all six status flags that cannot fault (ADC and SBB read CF first).
                        return false;
                    case InlineKind.ShiftRI when ShiftCount(in ops[j], next) != 0:
                        // SHL/SHR/SAR by a non-zero count write all six; a rotate only CF and OF.
                        if (!IsRotateByConstant(in ops[j], next) || rotate)
                        {
                            return false;
                        }

                        return true;
                    case InlineKind.MovRR:
                    case InlineKind.MovRI:
                    case InlineKind.Lea:
                    case InlineKind.Nop:
                    case InlineKind.ExtendRR:
                    case InlineKind.NotR:
                    case InlineKind.BswapR:
                        continue;
                    default:
                        return true;
                }
            }

            return true;
        }

        private static int ShiftCount(in Op op, InlineForm form) => (int)(op.Imm & (form.SizeIndex == 3 ? 0x3FUL : 0x1FUL));

        private static bool IsRotateByConstant(in Op op, InlineForm form) =>
            form.Kind == InlineKind.ShiftRI && op.Aux is ShiftSemantics.Rol or ShiftSemantics.Ror && ShiftCount(in op, form) != 0;

        private static ulong Truncate(ulong value, int sizeIndex) => value & LazyFlags.Masks[sizeIndex];

        /// <summary>Sign-extends the value on the stack from the operand size to 64 bits (size index 3: unchanged).</summary>
        private void EmitSignExtend(int sizeIndex) => EmitExtend(sizeIndex, signed: true);

        /// <summary>Narrows the value on the stack to the operand size and widens it back to 64 bits, by sign or by zero (size index 3: unchanged).</summary>
        private void EmitExtend(int sizeIndex, bool signed)
        {
            if (sizeIndex >= 3)
            {
                return;
            }

            _il.Emit(sizeIndex switch
            {
                0 => signed ? OpCodes.Conv_I1 : OpCodes.Conv_U1,
                1 => signed ? OpCodes.Conv_I2 : OpCodes.Conv_U2,
                _ => signed ? OpCodes.Conv_I4 : OpCodes.Conv_U4,
            });
            _il.Emit(signed ? OpCodes.Conv_I8 : OpCodes.Conv_U8);
        }

        // ---- Registers ----------------------------------------------------------------

        private LocalBuilder Local(int slot) => _locals[slot] ??= _il.DeclareLocal(typeof(ulong));

        /// <summary>Pushes register <paramref name="slot"/> (zero-extended from 32 bits for size index 2).</summary>
        private void LoadReg(int slot, int sizeIndex)
        {
            if (slot == RegisterFile.Zero)
            {
                _il.Emit(OpCodes.Ldc_I8, 0L);
                return;
            }

            if (_state[slot] == Cached.Unknown)
            {
                LoadFromFile(slot);
                _il.Emit(OpCodes.Stloc, Local(slot));
                _state[slot] = Cached.Clean;
            }

            _il.Emit(OpCodes.Ldloc, Local(slot));
            EmitZeroExtend(sizeIndex);
        }

        /// <summary>Truncates the value on the stack to the operand size, zero-extended (size index 3: unchanged).</summary>
        private void EmitZeroExtend(int sizeIndex) => EmitExtend(sizeIndex, signed: false);

        /// <summary>Pops a value into register <paramref name="slot"/> as a 32-bit (zero-extending) or 64-bit write; 8- and 16-bit writes keep the upper bits.</summary>
        private void StoreReg(int slot, int sizeIndex)
        {
            if (sizeIndex < 2)
            {
                ulong mask = LazyFlags.Masks[sizeIndex];
                _il.Emit(OpCodes.Ldc_I8, (long)mask);
                _il.Emit(OpCodes.And);
                _il.Emit(OpCodes.Stloc, _t);
                LoadReg(slot, 3);
                _il.Emit(OpCodes.Ldc_I8, (long)~mask);
                _il.Emit(OpCodes.And);
                _il.Emit(OpCodes.Ldloc, _t);
                _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Stloc, Local(slot));
                _state[slot] = Cached.Dirty;
                return;
            }

            if (sizeIndex == 2)
            {
                _il.Emit(OpCodes.Conv_U4);
                _il.Emit(OpCodes.Conv_U8);
            }

            _il.Emit(OpCodes.Stloc, Local(slot));
            _state[slot] = Cached.Dirty;
        }

        private void LoadFromFile(int slot)
        {
            EmitSlotAddress(slot);
            _il.Emit(OpCodes.Ldind_I8);
        }

        /// <summary>Pushes the address of register-file slot <paramref name="slot"/>.</summary>
        private void EmitSlotAddress(int slot)
        {
            _il.Emit(OpCodes.Ldloc, _regsRef);
            if (slot != 0)
            {
                _il.Emit(OpCodes.Ldc_I4, slot * 8);
                _il.Emit(OpCodes.Add);
            }
        }

        /// <summary>Writes dirty registers back to the register file; <paramref name="markClean"/> false leaves the emitter's view unchanged (a side path).</summary>
        private void SpillAll(bool markClean)
        {
            for (int slot = 0; slot < 16; slot++)
            {
                if (_state[slot] != Cached.Dirty)
                {
                    continue;
                }

                EmitSlotAddress(slot);
                _il.Emit(OpCodes.Ldloc, Local(slot));
                _il.Emit(OpCodes.Stind_I8);
                if (markClean)
                {
                    _state[slot] = Cached.Clean;
                }
            }
        }

        /// <summary>Reloads every register the emitter holds in a local (after a handler ran on a side path).</summary>
        /// <summary>
        /// After a memory form's handler ran on its miss path: reloads the locals the hit path
        /// holds that the miss path does not — those loaded after the TLB check, and the registers
        /// the instruction writes (the handler writes no others, and its exits leave the method).
        /// </summary>
        private void ReloadAfterMiss(in Op op, InlineForm form)
        {
            int written = form.Kind is InlineKind.MovRM or InlineKind.ExtendRM or InlineKind.AluRM or InlineKind.PopR ? op.Reg / 8
                : form.Kind == InlineKind.DivRM ? Rax : -1;
            int alsoWritten = form.Kind is InlineKind.PushR or InlineKind.PushI or InlineKind.PopR ? X86Cpu.Rsp
                : form.Kind == InlineKind.DivRM ? Rdx : -1;
            for (int slot = 0; slot < Slots; slot++)
            {
                if (_state[slot] != Cached.Unknown && (_stateAtMiss[slot] == Cached.Unknown || slot == written || slot == alsoWritten))
                {
                    LoadFromFile(slot);
                    _il.Emit(OpCodes.Stloc, Local(slot));
                }
            }
        }

        // ---- Branches -----------------------------------------------------------------

        private void NoteFlagsInLocals(InlineForm form)
        {
            _flagsKind = form.Alu switch
            {
                InlineAlu.Adc or InlineAlu.Sbb => LazyFlags.None,
                InlineAlu.Add => LazyFlags.Add,
                InlineAlu.Sub or InlineAlu.Cmp => LazyFlags.Sub,
                _ => LazyFlags.Logic,
            };
            _flagsSize = form.SizeIndex;
        }

        /// <summary>
        /// A relative JMP or a Jcc in 64-bit code, inline: the condition from the producer's
        /// operands in locals when it is in this block, else the interpreter's condition test on
        /// the lazy state; a taken branch writes back the dirty registers and leaves the block as
        /// the handler would (RIP set, <see cref="X86Cpu.ExitJump"/>). A not-taken Jcc keeps the
        /// registers in locals. False for other ops (and branches outside 64-bit mode).
        /// </summary>
        private bool EmitBranch(in Op op, int i)
        {
            if (!_is64 || op.OpSize != 8)
            {
                return false;
            }

            nint handler = (nint)op.Handler;
            int cc = Array.IndexOf(BranchHandlers.JccTable, handler);
            bool jmp = handler == (nint)(delegate*<X86Cpu, ref Op, void>)&BranchHandlers.JmpRel;
            if (cc < 0 && !jmp)
            {
                return false;
            }

            Label notTaken = _il.DefineLabel();
            if (!jmp)
            {
                EmitCondition(cc);
                _il.Emit(OpCodes.Brfalse, notTaken);
            }

            EmitTakenBranch(in op, i);
            _il.MarkLabel(notTaken);
            return true;
        }

        /// <summary>Leaves the block at the branch's target: RIP = block RIP + Imm (canonical, else the handler raises #GP precisely).</summary>
        private void EmitTakenBranch(in Op op, int i)
        {
            int member = IsRegion ? MemberAt(_offsets[_member] + (long)op.Imm) : -1;
            if (member >= 0)
            {
                EmitRegionEdge(member, i + 1, afterHandler: false);
                return;
            }

            // From the register file, not a cached local: this path is conditional, so loading a
            // local here would leave it unset on the not-taken path that believes it loaded.
            LoadFromFile(RegisterFile.BlockRip);
            _il.Emit(OpCodes.Ldc_I8, (long)op.Imm);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, _linear);

            // Canonical: bits 63..47 all equal.
            Label bad = _il.DefineLabel();
            _il.Emit(OpCodes.Ldloc, _linear);
            _il.Emit(OpCodes.Ldc_I4, 16);
            _il.Emit(OpCodes.Shl);
            _il.Emit(OpCodes.Ldc_I4, 16);
            _il.Emit(OpCodes.Shr);
            _il.Emit(OpCodes.Ldloc, _linear);
            _il.Emit(OpCodes.Bne_Un, bad);
            SpillAll(markClean: false);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, _linear);
            _il.Emit(OpCodes.Stfld, s_rip);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, X86Cpu.ExitJump);
            _il.Emit(OpCodes.Stfld, s_exitBlock);
            EmitReturn(i + 1);

            _il.MarkLabel(bad);
            SpillAll(markClean: false);
            CallHandler(in op, i, Tier1CallReason.BadTarget);
            EmitReturn(i + 1);
        }

        /// <summary>Pushes condition <paramref name="cc"/> (Jcc order) as 0 or 1.</summary>
        private void EmitCondition(int cc)
        {
            if (!EmitConditionFromLocals(cc))
            {
                _il.Emit(OpCodes.Ldarg_1);
                _il.Emit(OpCodes.Call, HandlerCatalog.ConditionType(cc).GetMethod("Evaluate", BindingFlags.Public | BindingFlags.Static)!);
            }
        }

        /// <summary>
        /// The condition from _a/_b/_r of an inline producer earlier in the block (operands masked
        /// to the size, result unmasked), for the pairs that need no carry/overflow/parity
        /// arithmetic; false when the producer or condition is another.
        /// </summary>
        private bool EmitConditionFromLocals(int cc)
        {
            int kind = _flagsKind;
            int size = _flagsSize;
            bool negate = (cc & 1) != 0;
            int test = cc >> 1; // O, B, E, BE, S, P, L, LE
            if (kind == LazyFlags.None || test is 0 or 5)
            {
                return false;
            }

            if (kind == LazyFlags.Sub)
            {
                switch (test)
                {
                    case 1:
                        // B: a < b unsigned.
                        _il.Emit(OpCodes.Ldloc, _a);
                        _il.Emit(OpCodes.Ldloc, _b);
                        _il.Emit(OpCodes.Clt_Un);
                        break;
                    case 2:
                        _il.Emit(OpCodes.Ldloc, _a);
                        _il.Emit(OpCodes.Ldloc, _b);
                        _il.Emit(OpCodes.Ceq);
                        break;
                    case 3:
                        // BE: !(a > b) unsigned.
                        _il.Emit(OpCodes.Ldloc, _a);
                        _il.Emit(OpCodes.Ldloc, _b);
                        _il.Emit(OpCodes.Cgt_Un);
                        negate = !negate;
                        break;
                    case 4:
                        EmitSignOfResult(size);
                        break;
                    case 6:
                        // L: signed a < b at the operand size.
                        _il.Emit(OpCodes.Ldloc, _a);
                        EmitSignExtend(size);
                        _il.Emit(OpCodes.Ldloc, _b);
                        EmitSignExtend(size);
                        _il.Emit(OpCodes.Clt);
                        break;
                    default:
                        // LE: !(a > b) signed.
                        _il.Emit(OpCodes.Ldloc, _a);
                        EmitSignExtend(size);
                        _il.Emit(OpCodes.Ldloc, _b);
                        EmitSignExtend(size);
                        _il.Emit(OpCodes.Cgt);
                        negate = !negate;
                        break;
                }
            }
            else
            {
                // Logic (CF = OF = 0), Add, Inc, Dec: only ZF and SF from the result (and, for
                // logic, the conditions they decide alone).
                bool logic = kind == LazyFlags.Logic;
                switch (test)
                {
                    case 2:
                        EmitResultIsZero(size);
                        break;
                    case 4:
                        EmitSignOfResult(size);
                        break;
                    case 1 when logic:
                        // B: CF = 0.
                        _il.Emit(OpCodes.Ldc_I4_0);
                        break;
                    case 3 when logic:
                        EmitResultIsZero(size);
                        break;
                    case 6 when logic:
                        // L: SF != OF = SF.
                        EmitSignOfResult(size);
                        break;
                    case 7 when logic:
                        // LE: ZF || SF.
                        _il.Emit(OpCodes.Ldloc, _r);
                        EmitSignExtend(size);
                        _il.Emit(OpCodes.Ldc_I8, 1L);
                        _il.Emit(OpCodes.Clt);
                        break;
                    default:
                        return false;
                }
            }

            if (negate)
            {
                _il.Emit(OpCodes.Ldc_I4_0);
                _il.Emit(OpCodes.Ceq);
            }

            return true;
        }

        private void EmitResultIsZero(int size)
        {
            _il.Emit(OpCodes.Ldloc, _r);
            EmitZeroExtend(size);
            _il.Emit(OpCodes.Ldc_I8, 0L);
            _il.Emit(OpCodes.Ceq);
        }

        private void EmitSignOfResult(int size)
        {
            _il.Emit(OpCodes.Ldloc, _r);
            EmitSignExtend(size);
            _il.Emit(OpCodes.Ldc_I8, 0L);
            _il.Emit(OpCodes.Clt);
        }

        // ---- Handler calls ------------------------------------------------------------

        private void EmitHandlerCall(in Op op, int i, Tier1CallReason reason)
        {
            CalledHandlersOnThisThread.Add((nint)op.Handler);
            _handlerInMember = true;
            SpillAll(markClean: true);
            CallHandler(in op, i, reason, straightLine: true);
            _blockStored = true; // on the straight-line path: every later op of the member comes after it
            Array.Clear(_state);
        }

        /// <summary>Makes the member X86Cpu._block, sets _opIndex, calls the op's handler, and leaves the block if it asked to (<paramref name="straightLine"/>: not in a branch of the op).</summary>
        private void CallHandler(in Op op, int i, Tier1CallReason reason, bool alwaysLeaves = false, bool straightLine = false)
        {
            EmitProfileCount(in op, reason);
            if (!_blockStored)
            {
                EmitSyncBlock(onlyIfChanged: straightLine);
            }

            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, i);
            _il.Emit(OpCodes.Stfld, s_opIndex);
            _il.Emit(OpCodes.Ldarg_1);
            if (_member == 0)
            {
                _il.Emit(OpCodes.Ldarg_2);
                if (i != 0)
                {
                    _il.Emit(OpCodes.Ldc_I4, i * sizeof(Op));
                    _il.Emit(OpCodes.Add);
                }
            }
            else
            {
                // Another member's op: through the region array the delegate is closed over.
                _il.Emit(OpCodes.Ldarg_0);
                _il.Emit(OpCodes.Ldc_I4, _member);
                _il.Emit(OpCodes.Ldelem_Ref);
                _il.Emit(OpCodes.Call, s_blockOps);
                _il.Emit(OpCodes.Ldc_I4, i);
                _il.Emit(OpCodes.Ldelema, typeof(Op));
            }

            _il.Emit(OpCodes.Ldc_I8, (long)(nint)op.Handler);
            _il.Emit(OpCodes.Conv_I);
            _il.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(void), s_parameters, null);
            if (alwaysLeaves)
            {
                // CALL and RET jump or fault: no way on in this block, so no check and no code after.
                if (IsRegion && i == _block.Count - 1)
                {
                    EmitHandlerJumpDispatch(i);
                }

                EmitReturn(i + 1);
                return;
            }

            Label go = _il.DefineLabel();
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_exitBlock);
            _il.Emit(OpCodes.Brfalse, go);
            if (IsRegion && i == _block.Count - 1)
            {
                EmitHandlerJumpDispatch(i);
            }

            EmitReturn(i + 1);
            _il.MarkLabel(go);
        }

        /// <summary>With <see cref="Tier1CallProfile"/> on: counts the call about to be made (nothing is emitted otherwise).</summary>
        private void EmitProfileCount(in Op op, Tier1CallReason reason)
        {
            if (!Tier1CallProfile.Enabled)
            {
                return;
            }

            string form = op.Number < _block.Instructions.Length ? _block.Instructions[op.Number].Code.ToString() : "?";
            if ((op.Flags & OpFlags.Memory) != 0)
            {
                form += " (mem)";
            }

            int site = Tier1CallProfile.Site((nint)op.Handler, form, reason);
            if (site >= 0)
            {
                _il.Emit(OpCodes.Ldc_I4, site);
                _il.Emit(OpCodes.Call, s_profileCount);
            }
        }

        // ---- ALU ----------------------------------------------------------------------

        /// <summary>_a and _b hold the operands (masked to the size); computes, writes the result and the lazy flags.</summary>
        private void EmitAlu(in Op op, InlineForm form, bool flagsLive)
        {
            if (form.Alu is InlineAlu.Adc or InlineAlu.Sbb)
            {
                EmitCarryAlu(in op, form, flagsLive);
                return;
            }

            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldloc, _b);
            _il.Emit(form.Alu switch
            {
                InlineAlu.Add => OpCodes.Add,
                InlineAlu.Sub or InlineAlu.Cmp => OpCodes.Sub,
                InlineAlu.And or InlineAlu.Test => OpCodes.And,
                InlineAlu.Or => OpCodes.Or,
                _ => OpCodes.Xor,
            });
            _il.Emit(OpCodes.Stloc, _r);
            bool writes = form.Alu is not (InlineAlu.Cmp or InlineAlu.Test);
            if (writes && form.Kind is InlineKind.AluRR or InlineKind.AluRI or InlineKind.AluRM)
            {
                _il.Emit(OpCodes.Ldloc, _r);
                StoreReg(op.Reg / 8, form.SizeIndex);
            }

            if (!flagsLive)
            {
                return;
            }

            int kind = form.Alu switch
            {
                InlineAlu.Add => LazyFlags.Add,
                InlineAlu.Sub or InlineAlu.Cmp => LazyFlags.Sub,
                _ => LazyFlags.Logic,
            };
            EmitLazyStore(kind, form.SizeIndex);
        }

        /// <summary>
        /// The lazy flags as the interpreter records them: the kind and size, the operands _a and
        /// _b (zero for a logic op, which has none) and the sign-extended result _r.
        /// </summary>
        private void EmitLazyStore(int kind, int sizeIndex)
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, (kind << 2) | sizeIndex);
            _il.Emit(OpCodes.Stfld, s_lazy);
            EmitLazyOperand(_a, s_lazyA, kind);
            EmitLazyOperand(_b, s_lazyB, kind);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, _r);
            EmitSignExtend(sizeIndex);
            _il.Emit(OpCodes.Stfld, s_lazyRes);
        }

        private void EmitLazyOperand(LocalBuilder operand, FieldInfo field, int kind)
        {
            _il.Emit(OpCodes.Ldarg_1);
            if (kind == LazyFlags.Logic)
            {
                _il.Emit(OpCodes.Ldc_I8, 0L);
            }
            else
            {
                _il.Emit(OpCodes.Ldloc, operand);
            }

            _il.Emit(OpCodes.Stfld, field);
        }

        /// <summary>
        /// ADC / SBB r, r / r, imm: a + b + CF or a - b - CF, the lazy state as <see cref="AdcOp"/>
        /// and <see cref="SbbOp"/> record it (CF in _lazyCarry).
        /// </summary>
        private void EmitCarryAlu(in Op op, InlineForm form, bool flagsLive)
        {
            bool add = form.Alu == InlineAlu.Adc;
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Call, s_carryFlag);
            _il.Emit(OpCodes.Conv_U8);
            _il.Emit(OpCodes.Stloc, _t);
            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldloc, _b);
            _il.Emit(add ? OpCodes.Add : OpCodes.Sub);
            _il.Emit(OpCodes.Ldloc, _t);
            _il.Emit(add ? OpCodes.Add : OpCodes.Sub);
            _il.Emit(OpCodes.Stloc, _r);
            if (flagsLive)
            {
                // Before StoreReg, which may use _t for a narrow register.
                _il.Emit(OpCodes.Ldarg_1);
                _il.Emit(OpCodes.Ldloc, _t);
                _il.Emit(OpCodes.Stfld, s_lazyCarry);
            }

            _il.Emit(OpCodes.Ldloc, _r);
            StoreReg(op.Reg / 8, form.SizeIndex);
            if (!flagsLive)
            {
                return;
            }

            EmitLazyStore(add ? LazyFlags.Adc : LazyFlags.Sbb, form.SizeIndex);
        }

        /// <summary>
        /// ROL/ROR/SHL/SHR/SAR r, imm: the result, and with live flags a non-zero count's flags as
        /// <see cref="ShiftSemantics.Apply{TSize}"/> sets them (a zero count changes no flag; a
        /// 32-bit register is written zero-extended either way, as the handler writes it).
        /// </summary>
        private void EmitShiftByConstant(in Op op, InlineForm form, bool flagsLive)
        {
            int count = ShiftCount(in op, form);
            LoadReg(op.Reg / 8, form.SizeIndex);
            _il.Emit(OpCodes.Stloc, _a);
            void PushCount() => _il.Emit(OpCodes.Ldc_I4, count);
            EmitShiftResult(op.Aux, form.SizeIndex, PushCount);
            _il.Emit(OpCodes.Stloc, _r);
            if (flagsLive && count != 0)
            {
                EmitShiftFlags(in op, form.SizeIndex, PushCount);
            }

            _il.Emit(OpCodes.Ldloc, _r);
            StoreReg(op.Reg / 8, form.SizeIndex);
        }

        /// <summary>ROL/ROR/SHL/SHR/SAR r, CL: as by a constant, with the masked count from RCX; the flags only when it is not zero.</summary>
        private void EmitShiftByCl(in Op op, InlineForm form, bool flagsLive)
        {
            LoadReg(Rcx, 3);
            _il.Emit(OpCodes.Conv_I4);
            _il.Emit(OpCodes.Ldc_I4, form.SizeIndex == 3 ? 0x3F : 0x1F);
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Stloc, _count);
            LoadReg(op.Reg / 8, form.SizeIndex);
            _il.Emit(OpCodes.Stloc, _a);
            void PushCount() => _il.Emit(OpCodes.Ldloc, _count);
            EmitShiftResult(op.Aux, form.SizeIndex, PushCount);
            _il.Emit(OpCodes.Stloc, _r);
            if (flagsLive)
            {
                Label unchanged = _il.DefineLabel();
                _il.Emit(OpCodes.Ldloc, _count);
                _il.Emit(OpCodes.Brfalse, unchanged);
                EmitShiftFlags(in op, form.SizeIndex, PushCount);
                _il.MarkLabel(unchanged);
            }

            _il.Emit(OpCodes.Ldloc, _r);
            StoreReg(op.Reg / 8, form.SizeIndex);
        }

        /// <summary>
        /// Pushes shift <paramref name="kind"/> of _a (zero-extended at the size) by the masked count
        /// <paramref name="pushCount"/> pushes (0 included: the operand unchanged), not truncated
        /// to the size above bit 31 for SHL/SAR of 32 bits; a rotate's result is truncated.
        /// </summary>
        private void EmitShiftResult(int kind, int sizeIndex, Action pushCount)
        {
            bool wide = sizeIndex == 3;
            switch (kind)
            {
                case ShiftSemantics.Rol:
                case ShiftSemantics.Ror:
                    _il.Emit(OpCodes.Ldloc, _a);
                    if (!wide)
                    {
                        _il.Emit(OpCodes.Conv_U4);
                    }

                    pushCount();
                    _il.Emit(OpCodes.Call, kind == ShiftSemantics.Rol ? (wide ? s_rotateLeft64 : s_rotateLeft32) : (wide ? s_rotateRight64 : s_rotateRight32));
                    if (!wide)
                    {
                        _il.Emit(OpCodes.Conv_U8);
                    }

                    break;
                case ShiftSemantics.Shl:
                case ShiftSemantics.Sal:
                    _il.Emit(OpCodes.Ldloc, _a);
                    pushCount();
                    _il.Emit(OpCodes.Shl);
                    break;
                case ShiftSemantics.Shr:
                    _il.Emit(OpCodes.Ldloc, _a);
                    pushCount();
                    _il.Emit(OpCodes.Shr_Un);
                    break;
                default:
                    // SAR: arithmetic shift of the sign-extended operand.
                    _il.Emit(OpCodes.Ldloc, _a);
                    EmitSignExtend(sizeIndex);
                    pushCount();
                    _il.Emit(OpCodes.Shr);
                    break;
            }
        }

        /// <summary>
        /// The flags of shift <paramref name="kind"/> by a non-zero masked count, from the operand
        /// _a and the result _r, as <see cref="ShiftSemantics.Apply{TSize}"/> sets them: SHL/SHR/SAR
        /// replace all six (CF the last bit out, OF for SHL the result's top bit XOR CF, for SHR
        /// the operand's top bit, for SAR 0; SF/ZF/PF of the result; AF 0), ROL/ROR only CF and OF.
        /// </summary>
        private void EmitShiftFlags(in Op op, int sizeIndex, Action pushCount)
        {
            int kind = op.Aux;
            int top = sizeIndex == 3 ? 63 : 31;
            if (kind is ShiftSemantics.Rol or ShiftSemantics.Ror)
            {
                EmitProfileCount(in op, Tier1CallReason.RotateFlags);
            }

            _il.Emit(OpCodes.Ldarg_1);
            if (kind is ShiftSemantics.Rol or ShiftSemantics.Ror)
            {
                _il.Emit(OpCodes.Ldc_I8, (long)(RflagsBits.Carry | RflagsBits.Overflow));
                if (kind == ShiftSemantics.Rol)
                {
                    // CF = bit 0, OF = top bit XOR CF.
                    EmitBitOf(_r, 0);
                    EmitBitOf(_r, top);
                    EmitBitOf(_r, 0);
                }
                else
                {
                    // CF = top bit, OF = top bit XOR the bit below it.
                    EmitBitOf(_r, top);
                    EmitBitOf(_r, top);
                    EmitBitOf(_r, top - 1);
                }

                _il.Emit(OpCodes.Xor);
                _il.Emit(OpCodes.Ldc_I4, 11);
                _il.Emit(OpCodes.Shl);
                _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Call, s_updateStatusFlags);
                return;
            }

            switch (kind)
            {
                case ShiftSemantics.Shl:
                case ShiftSemantics.Sal:
                    // CF = operand bit (bits - count); OF = result's top bit XOR CF.
                    _il.Emit(OpCodes.Ldloc, _a);
                    _il.Emit(OpCodes.Ldc_I4, top + 1);
                    pushCount();
                    _il.Emit(OpCodes.Sub);
                    _il.Emit(OpCodes.Shr_Un);
                    _il.Emit(OpCodes.Ldc_I8, 1L);
                    _il.Emit(OpCodes.And);
                    _il.Emit(OpCodes.Stloc, _t);
                    _il.Emit(OpCodes.Ldloc, _t);
                    EmitBitOf(_r, top);
                    _il.Emit(OpCodes.Ldloc, _t);
                    _il.Emit(OpCodes.Xor);
                    break;
                case ShiftSemantics.Shr:
                    // CF = operand bit (count - 1); OF = the operand's top bit.
                    _il.Emit(OpCodes.Ldloc, _a);
                    pushCount();
                    _il.Emit(OpCodes.Ldc_I4_1);
                    _il.Emit(OpCodes.Sub);
                    _il.Emit(OpCodes.Shr_Un);
                    _il.Emit(OpCodes.Ldc_I8, 1L);
                    _il.Emit(OpCodes.And);
                    EmitBitOf(_a, top);
                    break;
                default:
                    // SAR: CF = bit (count - 1) of the sign-extended operand; OF = 0.
                    _il.Emit(OpCodes.Ldloc, _a);
                    EmitSignExtend(sizeIndex);
                    pushCount();
                    _il.Emit(OpCodes.Ldc_I4_1);
                    _il.Emit(OpCodes.Sub);
                    _il.Emit(OpCodes.Shr);
                    _il.Emit(OpCodes.Ldc_I8, 1L);
                    _il.Emit(OpCodes.And);
                    _il.Emit(OpCodes.Ldc_I8, 0L);
                    break;
            }

            _il.Emit(OpCodes.Ldc_I4, 11);
            _il.Emit(OpCodes.Shl);
            _il.Emit(OpCodes.Or);
            _il.Emit(OpCodes.Ldloc, _r);
            EmitSignExtend(sizeIndex);
            _il.Emit(OpCodes.Call, s_resultFlags);
            _il.Emit(OpCodes.Or);
            _il.Emit(OpCodes.Call, s_setStatusFlags);
        }

        /// <summary>Pushes bit <paramref name="bit"/> of <paramref name="value"/> as 0 or 1 (64-bit).</summary>
        private void EmitBitOf(LocalBuilder value, int bit)
        {
            _il.Emit(OpCodes.Ldloc, value);
            if (bit != 0)
            {
                _il.Emit(OpCodes.Ldc_I4, bit);
                _il.Emit(OpCodes.Shr_Un);
            }

            _il.Emit(OpCodes.Ldc_I8, 1L);
            _il.Emit(OpCodes.And);
        }

        /// <summary>NEG r: 0 - r, the lazy state as <see cref="NegOp"/> records it (SUB of 0 and the operand), so a Jcc after it reads the locals as after a SUB.</summary>
        private void EmitNeg(in Op op, InlineForm form, bool flagsLive)
        {
            LoadReg(op.Reg / 8, form.SizeIndex);
            _il.Emit(OpCodes.Stloc, _b);
            _il.Emit(OpCodes.Ldc_I8, 0L);
            _il.Emit(OpCodes.Stloc, _a);
            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldloc, _b);
            _il.Emit(OpCodes.Sub);
            _il.Emit(OpCodes.Stloc, _r);
            _il.Emit(OpCodes.Ldloc, _r);
            StoreReg(op.Reg / 8, form.SizeIndex);
            if (flagsLive)
            {
                EmitLazyStore(LazyFlags.Sub, form.SizeIndex);
            }

            _flagsKind = LazyFlags.Sub;
            _flagsSize = form.SizeIndex;
        }

        /// <summary>NOT r and BSWAP r32/r64: the register only (neither writes a flag).</summary>
        private void EmitNotOrByteSwap(in Op op, InlineForm form)
        {
            LoadReg(op.Reg / 8, form.SizeIndex);
            if (form.Kind == InlineKind.NotR)
            {
                _il.Emit(OpCodes.Not);
            }
            else if (form.SizeIndex == 3)
            {
                _il.Emit(OpCodes.Call, s_byteSwap64);
            }
            else
            {
                _il.Emit(OpCodes.Conv_U4);
                _il.Emit(OpCodes.Call, s_byteSwap32);
                _il.Emit(OpCodes.Conv_U8);
            }

            StoreReg(op.Reg / 8, form.SizeIndex);
        }

        /// <summary>IMUL r, r / r, r, imm: the low product into the register; the flags (if live) through the handler's own flag helper.</summary>
        private void EmitImul(in Op op, InlineForm form, bool flagsLive)
        {
            bool wide = form.SizeIndex == 3;
            LoadReg(op.Rm / 8, form.SizeIndex);
            if (!wide)
            {
                _il.Emit(OpCodes.Conv_I4);
                _il.Emit(OpCodes.Conv_I8);
            }

            _il.Emit(OpCodes.Stloc, _b);
            if (op.Aux != 0)
            {
                _il.Emit(OpCodes.Ldc_I8, wide ? (long)op.Imm : (int)op.Imm);
            }
            else
            {
                LoadReg(op.Reg / 8, form.SizeIndex);
                if (!wide)
                {
                    _il.Emit(OpCodes.Conv_I4);
                    _il.Emit(OpCodes.Conv_I8);
                }
            }

            _il.Emit(OpCodes.Stloc, _a);
            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldloc, _b);
            _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Stloc, _r);
            _il.Emit(OpCodes.Ldloc, _r);
            StoreReg(op.Reg / 8, form.SizeIndex);
            if (!flagsLive)
            {
                return;
            }

            // Overflow: 64-bit, the high half is not the low half's sign; 32-bit, the 64-bit
            // product of the sign-extended operands is not its own low half sign-extended.
            _il.Emit(OpCodes.Ldarg_1);
            if (wide)
            {
                _il.Emit(OpCodes.Ldloc, _a);
                _il.Emit(OpCodes.Ldloc, _b);
                _il.Emit(OpCodes.Ldloca, _t);
                _il.Emit(OpCodes.Call, s_bigMul);
                _il.Emit(OpCodes.Ldloc, _r);
                _il.Emit(OpCodes.Ldc_I4, 63);
                _il.Emit(OpCodes.Shr);
            }
            else
            {
                _il.Emit(OpCodes.Ldloc, _r);
                _il.Emit(OpCodes.Ldloc, _r);
                _il.Emit(OpCodes.Conv_I4);
                _il.Emit(OpCodes.Conv_I8);
            }

            _il.Emit(OpCodes.Ceq);
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ceq);
            _il.Emit(OpCodes.Ldloc, _r);
            EmitSignExtend(form.SizeIndex);
            _il.Emit(OpCodes.Call, s_setMulFlags);
        }

        /// <summary>INC/DEC r: CF is preserved, so it is read (from the previous producer's lazy state) into _lazyCarry.</summary>
        private void EmitIncDec(in Op op, InlineForm form)
        {
            LoadReg(op.Reg / 8, form.SizeIndex);
            _il.Emit(OpCodes.Stloc, _a);
            EmitIncDecOfA(form);
            _il.Emit(OpCodes.Ldloc, _r);
            StoreReg(op.Reg / 8, form.SizeIndex);
        }

        /// <summary>INC/DEC of _a (zero-extended at the size) into _r, with the lazy state and the preserved CF as <see cref="IncOp"/>/<see cref="DecOp"/> record them.</summary>
        private void EmitIncDecOfA(InlineForm form)
        {
            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldc_I8, 1L);
            _il.Emit(form.Alu == InlineAlu.Add ? OpCodes.Add : OpCodes.Sub);
            _il.Emit(OpCodes.Stloc, _r);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Call, s_carryFlag);
            _il.Emit(OpCodes.Conv_U8);
            _il.Emit(OpCodes.Stfld, s_lazyCarry);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, ((form.Alu == InlineAlu.Add ? LazyFlags.Inc : LazyFlags.Dec) << 2) | form.SizeIndex);
            _il.Emit(OpCodes.Stfld, s_lazy);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Stfld, s_lazyA);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I8, 1L);
            _il.Emit(OpCodes.Stfld, s_lazyB);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, _r);
            EmitSignExtend(form.SizeIndex);
            _il.Emit(OpCodes.Stfld, s_lazyRes);
        }

        // ---- Memory -------------------------------------------------------------------

        /// <summary>Pushes the operand's effective address, masked to the address size.</summary>
        private void EmitEffectiveAddress(in Op op)
        {
            LoadReg(op.Base, 3);
            if (op.Index != RegisterFile.Zero)
            {
                LoadReg(op.Index, 3);
                if (op.Scale != 0)
                {
                    _il.Emit(OpCodes.Ldc_I4, (int)op.Scale);
                    _il.Emit(OpCodes.Shl);
                }

                _il.Emit(OpCodes.Add);
            }

            if (op.Disp != 0)
            {
                _il.Emit(OpCodes.Ldc_I8, (long)op.Disp);
                _il.Emit(OpCodes.Add);
            }

            if (op.AddrSize == 4)
            {
                _il.Emit(OpCodes.Conv_U4);
                _il.Emit(OpCodes.Conv_U8);
            }
            else if (op.AddrSize == 2)
            {
                _il.Emit(OpCodes.Conv_U2);
                _il.Emit(OpCodes.Conv_U8);
            }
        }

        /// <summary>Stores the operand's linear address in _linear (64-bit mode: FS/GS bases only; a non-canonical address misses the TLB).</summary>
        private void EmitLinear(in Op op)
        {
            EmitEffectiveAddress(in op);
            if (op.Seg is X86Cpu.SegFs or X86Cpu.SegGs)
            {
                _il.Emit(OpCodes.Ldarg_1);
                _il.Emit(OpCodes.Ldflda, s_segBase);
                _il.Emit(OpCodes.Ldc_I4, op.Seg * 8);
                _il.Emit(OpCodes.Add);
                _il.Emit(OpCodes.Ldind_I8);
                _il.Emit(OpCodes.Add);
            }

            _il.Emit(OpCodes.Stloc, _linear);
        }

        /// <summary>Branches to <paramref name="miss"/> unless the TLB maps _linear for the access; on a hit _host holds the host address.</summary>
        /// <remarks>
        /// The interpreter's TLB fast path (X86Cpu.TlbFor and Tag, as <c>Read32</c>/<c>Write32</c>
        /// use them), emitted here rather than called: the JIT inlined four small methods per
        /// access, which cost more to compile than the few instructions they come to.
        /// </remarks>
        private void EmitTlbCheck(bool write, int size, Label miss)
        {
            // entry = ref _tlbEntries[_tlbContextBase + ((int)(linear >> 12) & _tlbSlotMask)]
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_tlbEntries);
            _il.Emit(OpCodes.Call, s_arrayData);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_tlbContextBase);
            _il.Emit(OpCodes.Ldloc, _linear);
            _il.Emit(OpCodes.Ldc_I4, 12);
            _il.Emit(OpCodes.Shr_Un);
            _il.Emit(OpCodes.Conv_I4);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_tlbSlotMask);
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Conv_I);
            _il.Emit(OpCodes.Sizeof, typeof(TlbEntry));
            _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, _entry);

            // host = linear + entry.Addend
            _il.Emit(OpCodes.Ldloc, _linear);
            _il.Emit(OpCodes.Conv_I);
            _il.Emit(OpCodes.Ldloc, _entry);
            _il.Emit(OpCodes.Ldfld, s_entryAddend);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, _host);

            // A hit: the entry's tag is that of the page of the access's last byte under the
            // current stamp. One compare tests both that the entry maps the page of _linear and
            // that the access stays in it: the entry sits in the slot of _linear's page, and the
            // next page's slot is another (the TLB has at least 16), so it never holds that
            // page's tag. A wrap past 2^64 gives page 0, which misses as well.
            _il.Emit(OpCodes.Ldloc, _entry);
            _il.Emit(OpCodes.Ldfld, write ? s_entryWriteTag : s_entryReadTag);
            _il.Emit(OpCodes.Ldloc, _linear);
            if (size > 1)
            {
                _il.Emit(OpCodes.Ldc_I4, size - 1);
                _il.Emit(OpCodes.Conv_I8);
                _il.Emit(OpCodes.Add);
            }

            _il.Emit(OpCodes.Ldc_I8, unchecked((long)SoftTlb.PageMask));
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, s_tlb);
            _il.Emit(OpCodes.Ldfld, s_tlbStamp);
            _il.Emit(OpCodes.Or);
            _il.Emit(OpCodes.Bne_Un, miss);

            Array.Copy(_state, _stateAtMiss, Slots);
        }

        /// <summary>Pushes the operand at _host, zero-extended to 64 bits.</summary>
        private void EmitHostLoad(int sizeIndex)
        {
            _il.Emit(OpCodes.Ldloc, _host);
            if (sizeIndex == 0)
            {
                _il.Emit(OpCodes.Ldind_U1);
                _il.Emit(OpCodes.Conv_U8);
                return;
            }

            _il.Emit(OpCodes.Unaligned, (byte)1);
            switch (sizeIndex)
            {
                case 1:
                    _il.Emit(OpCodes.Ldind_U2);
                    _il.Emit(OpCodes.Conv_U8);
                    break;
                case 2:
                    _il.Emit(OpCodes.Ldind_U4);
                    _il.Emit(OpCodes.Conv_U8);
                    break;
                default:
                    _il.Emit(OpCodes.Ldind_I8);
                    break;
            }
        }

        /// <summary>Stores <paramref name="value"/> (truncated to the operand size) at _host.</summary>
        private void EmitHostStore(int sizeIndex, LocalBuilder value)
        {
            _il.Emit(OpCodes.Ldloc, _host);
            _il.Emit(OpCodes.Ldloc, value);
            switch (sizeIndex)
            {
                case 0:
                    _il.Emit(OpCodes.Conv_U1);
                    _il.Emit(OpCodes.Stind_I1);
                    break;
                case 1:
                    _il.Emit(OpCodes.Conv_U2);
                    _il.Emit(OpCodes.Unaligned, (byte)1);
                    _il.Emit(OpCodes.Stind_I2);
                    break;
                case 2:
                    _il.Emit(OpCodes.Conv_U4);
                    _il.Emit(OpCodes.Unaligned, (byte)1);
                    _il.Emit(OpCodes.Stind_I4);
                    break;
                default:
                    _il.Emit(OpCodes.Unaligned, (byte)1);
                    _il.Emit(OpCodes.Stind_I8);
                    break;
            }
        }

        /// <summary>
        /// CALL rel32 in 64-bit mode: the return address stored below RSP through the TLB, RSP
        /// lowered, and the block left at the target as the handler leaves it. A non-canonical
        /// target or a TLB miss runs the handler for the whole instruction instead (its #GP comes
        /// after the store with RSP unchanged; #PF and #SS precisely).
        /// </summary>
        private void EmitCall(in Op op, int i, Label miss)
        {
            LoadFromFile(RegisterFile.BlockRip);
            _il.Emit(OpCodes.Ldc_I8, (long)op.Imm);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, _a);
            EmitBranchIfNotCanonical(_a, miss);
            LoadReg(X86Cpu.Rsp, 3);
            _il.Emit(OpCodes.Ldc_I8, 8L);
            _il.Emit(OpCodes.Sub);
            _il.Emit(OpCodes.Stloc, _linear);
            EmitTlbCheck(write: true, 8, miss);
            LoadFromFile(RegisterFile.BlockRip);
            _il.Emit(OpCodes.Ldc_I8, (long)op.NextOffset);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, _b);
            EmitHostStore(3, _b);
            _il.Emit(OpCodes.Ldloc, _linear);
            StoreReg(X86Cpu.Rsp, 3);
            EmitLeaveTo(_a, i);
        }

        /// <summary>
        /// RET / RET imm16 in 64-bit mode: the return address read at RSP through the TLB, RSP
        /// raised past it and the released bytes, and the block left at it. A TLB miss or a
        /// non-canonical return address runs the handler (which faults with RSP unchanged).
        /// </summary>
        private void EmitRet(in Op op, int i, Label miss)
        {
            LoadReg(X86Cpu.Rsp, 3);
            _il.Emit(OpCodes.Stloc, _linear);
            EmitTlbCheck(write: false, 8, miss);
            EmitHostLoad(3);
            _il.Emit(OpCodes.Stloc, _a);
            EmitBranchIfNotCanonical(_a, miss);
            _il.Emit(OpCodes.Ldloc, _linear);
            _il.Emit(OpCodes.Ldc_I8, 8L + (long)op.Imm);
            _il.Emit(OpCodes.Add);
            StoreReg(X86Cpu.Rsp, 3);
            EmitLeaveTo(_a, i);
        }

        /// <summary>Branches to <paramref name="target"/> unless <paramref name="address"/> is canonical (bits 63..47 equal).</summary>
        private void EmitBranchIfNotCanonical(LocalBuilder address, Label target)
        {
            _il.Emit(OpCodes.Ldloc, address);
            _il.Emit(OpCodes.Ldc_I4, 16);
            _il.Emit(OpCodes.Shl);
            _il.Emit(OpCodes.Ldc_I4, 16);
            _il.Emit(OpCodes.Shr);
            _il.Emit(OpCodes.Ldloc, address);
            _il.Emit(OpCodes.Bne_Un, target);
        }

        /// <summary>
        /// Leaves the block after op <paramref name="i"/> at <paramref name="target"/> as a jump
        /// handler would (registers written back, RIP set, <see cref="X86Cpu.ExitJump"/>); in a
        /// region, on into a member the block was seen to go to, as after a handler's jump.
        /// </summary>
        private void EmitLeaveTo(LocalBuilder target, int i)
        {
            SpillAll(markClean: false);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, target);
            _il.Emit(OpCodes.Stfld, s_rip);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldc_I4, X86Cpu.ExitJump);
            _il.Emit(OpCodes.Stfld, s_exitBlock);
            if (IsRegion && i == _block.Count - 1)
            {
                EmitHandlerJumpDispatch(i);
            }

            EmitReturn(i + 1);
        }

        /// <summary>
        /// DIV r/m32 and r/m64, the common case inline: EDX below the divisor (32 bits: the 64-bit
        /// dividend EDX:EAX gives a 32-bit quotient), RDX zero and the divisor not (64 bits).
        /// Anything else, and a TLB miss, goes to <paramref name="slow"/>, where the handler runs
        /// the instruction (#DE, a 128-bit dividend). DIV writes no flags.
        /// </summary>
        private void EmitDiv(in Op op, InlineForm form, Label slow)
        {
            int size = form.SizeIndex;

            // The registers first, so that every branch to the slow path sees them loaded.
            LoadReg(Rax, size);
            _il.Emit(OpCodes.Stloc, _a);
            LoadReg(Rdx, size);
            _il.Emit(OpCodes.Stloc, _t);
            if ((op.Flags & OpFlags.Memory) != 0)
            {
                EmitLinear(in op);
                EmitTlbCheck(write: false, 1 << size, slow);
                EmitHostLoad(size);
            }
            else
            {
                LoadReg(op.Rm / 8, size);
                Array.Copy(_state, _stateAtMiss, Slots);
            }

            _il.Emit(OpCodes.Stloc, _b);
            if (size == 3)
            {
                _il.Emit(OpCodes.Ldloc, _t);
                _il.Emit(OpCodes.Brtrue, slow);
                _il.Emit(OpCodes.Ldloc, _b);
                _il.Emit(OpCodes.Brfalse, slow);
            }
            else
            {
                // EDX < divisor (so the divisor is not 0 and the quotient fits); dividend EDX:EAX.
                _il.Emit(OpCodes.Ldloc, _t);
                _il.Emit(OpCodes.Ldloc, _b);
                _il.Emit(OpCodes.Bge_Un, slow);
                _il.Emit(OpCodes.Ldloc, _t);
                _il.Emit(OpCodes.Ldc_I4, 32);
                _il.Emit(OpCodes.Shl);
                _il.Emit(OpCodes.Ldloc, _a);
                _il.Emit(OpCodes.Or);
                _il.Emit(OpCodes.Stloc, _a);
            }

            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldloc, _b);
            _il.Emit(OpCodes.Rem_Un);
            _il.Emit(OpCodes.Stloc, _t);
            _il.Emit(OpCodes.Ldloc, _a);
            _il.Emit(OpCodes.Ldloc, _b);
            _il.Emit(OpCodes.Div_Un);
            StoreReg(Rax, size);
            _il.Emit(OpCodes.Ldloc, _t);
            StoreReg(Rdx, size);
        }

        /// <summary>
        /// SETcc r8 and CMOVcc r, r: the condition as the Jcc's (from the producer's locals or the
        /// lazy state), the move branch-free. A 32-bit CMOV writes its destination zero-extended
        /// even when the condition is false, as the handler does.
        /// </summary>
        private void EmitConditionalMove(in Op op, InlineForm form)
        {
            EmitCondition(op.Aux);
            _il.Emit(OpCodes.Conv_U8);
            if (form.Kind == InlineKind.SetccR)
            {
                StoreReg(op.Reg / 8, 0);
                return;
            }

            _il.Emit(OpCodes.Neg);
            _il.Emit(OpCodes.Stloc, _t);
            LoadReg(op.Rm / 8, form.SizeIndex);
            _il.Emit(OpCodes.Ldloc, _t);
            _il.Emit(OpCodes.And);
            LoadReg(op.Reg / 8, form.SizeIndex);
            _il.Emit(OpCodes.Ldloc, _t);
            _il.Emit(OpCodes.Not);
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Or);
            StoreReg(op.Reg / 8, form.SizeIndex);
        }

        /// <summary>
        /// A form with a memory (or stack) operand: the TLB-hit path inline; on a miss the
        /// registers are written back and the handler runs the whole instruction (it faults
        /// precisely, or goes through the MMU, MMIO, page splits and code-page tracking).
        /// </summary>
        private void EmitMemoryForm(in Op op, int i, InlineForm form, bool flagsLive)
        {
            Cached[] before = (Cached[])_state.Clone();
            Label miss = _il.DefineLabel();
            Label done = _il.DefineLabel();
            int size = 1 << form.SizeIndex;
            switch (form.Kind)
            {
                case InlineKind.ExtendRM:
                    EmitLinear(in op);
                    EmitTlbCheck(write: false, 1 << form.SourceIndex, miss);
                    EmitHostLoad(form.SourceIndex);
                    EmitExtend(form.SourceIndex, form.Signed);
                    StoreReg(op.Reg / 8, form.SizeIndex);
                    break;
                case InlineKind.CallRel:
                    EmitCall(in op, i, miss);
                    break;
                case InlineKind.Ret:
                    EmitRet(in op, i, miss);
                    break;
                case InlineKind.MovRM:
                    EmitLinear(in op);
                    EmitTlbCheck(write: false, size, miss);
                    EmitHostLoad(form.SizeIndex);
                    StoreReg(op.Reg / 8, form.SizeIndex);
                    break;
                case InlineKind.MovMR:
                case InlineKind.MovMI:
                    EmitLinear(in op);
                    EmitTlbCheck(write: true, size, miss);
                    if (form.Kind == InlineKind.MovMR)
                    {
                        LoadReg(op.Reg / 8, 3);
                    }
                    else
                    {
                        _il.Emit(OpCodes.Ldc_I8, (long)op.Imm);
                    }

                    _il.Emit(OpCodes.Stloc, _b);
                    EmitHostStore(form.SizeIndex, _b);
                    break;
                case InlineKind.AluRM:
                    EmitLinear(in op);
                    EmitTlbCheck(write: false, size, miss);
                    EmitHostLoad(form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _b);
                    LoadReg(op.Reg / 8, form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _a);
                    EmitAlu(in op, form, flagsLive);
                    break;
                case InlineKind.AluMR:
                case InlineKind.AluMI:
                    // CMP/TEST read memory; the others write the result back (the handler's RmwRef fast path).
                    bool writes = form.Alu is not (InlineAlu.Cmp or InlineAlu.Test);
                    EmitLinear(in op);
                    EmitTlbCheck(write: writes, size, miss);
                    EmitHostLoad(form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _a);
                    if (form.Kind == InlineKind.AluMR)
                    {
                        LoadReg(op.Reg / 8, form.SizeIndex);
                    }
                    else
                    {
                        _il.Emit(OpCodes.Ldc_I8, (long)Truncate(op.Imm, form.SizeIndex));
                    }

                    _il.Emit(OpCodes.Stloc, _b);
                    EmitAlu(in op, form, flagsLive);
                    if (writes)
                    {
                        EmitHostStore(form.SizeIndex, _r);
                    }

                    break;
                case InlineKind.IncDecM:
                    EmitLinear(in op);
                    EmitTlbCheck(write: true, size, miss);
                    EmitHostLoad(form.SizeIndex);
                    _il.Emit(OpCodes.Stloc, _a);
                    EmitIncDecOfA(form);
                    EmitHostStore(form.SizeIndex, _r);
                    break;
                case InlineKind.PushR:
                case InlineKind.PushI:
                    // The value first (PUSH RSP pushes the old RSP), then the store below RSP.
                    if (form.Kind == InlineKind.PushR)
                    {
                        LoadReg(op.Reg / 8, 3);
                    }
                    else
                    {
                        _il.Emit(OpCodes.Ldc_I8, (long)op.Imm);
                    }

                    _il.Emit(OpCodes.Stloc, _b);
                    LoadReg(X86Cpu.Rsp, 3);
                    _il.Emit(OpCodes.Ldc_I8, 8L);
                    _il.Emit(OpCodes.Sub);
                    _il.Emit(OpCodes.Stloc, _linear);
                    EmitTlbCheck(write: true, 8, miss);
                    EmitHostStore(3, _b);
                    _il.Emit(OpCodes.Ldloc, _linear);
                    StoreReg(X86Cpu.Rsp, 3);
                    break;
                case InlineKind.DivRM:
                    EmitDiv(in op, form, miss);
                    break;
                case InlineKind.PopR:
                    LoadReg(X86Cpu.Rsp, 3);
                    _il.Emit(OpCodes.Stloc, _linear);
                    EmitTlbCheck(write: false, 8, miss);
                    EmitHostLoad(3);
                    _il.Emit(OpCodes.Stloc, _b);
                    _il.Emit(OpCodes.Ldloc, _linear);
                    _il.Emit(OpCodes.Ldc_I8, 8L);
                    _il.Emit(OpCodes.Add);
                    StoreReg(X86Cpu.Rsp, 3);
                    _il.Emit(OpCodes.Ldloc, _b);
                    StoreReg(op.Reg / 8, 3);
                    break;
                default:
                    throw new InvalidOperationException($"no inline emitter for {form.Kind}");
            }

            _il.Emit(OpCodes.Br, done);

            // The miss path: write back what was dirty before this instruction, run the handler,
            // then reload what the hit path holds in locals, so both paths agree at 'done'.
            _il.MarkLabel(miss);
            Cached[] after = (Cached[])_state.Clone();
            Array.Copy(before, _state, Slots);
            SpillAll(markClean: false);
            if (form.Kind is InlineKind.CallRel or InlineKind.Ret)
            {
                CallHandler(in op, i, Tier1CallReason.TlbMiss, alwaysLeaves: true);
                Array.Copy(after, _state, Slots);
                _il.MarkLabel(done);
                return;
            }

            CallHandler(in op, i, form.Kind == InlineKind.DivRM ? Tier1CallReason.SlowCase : Tier1CallReason.TlbMiss);
            if (IsRegion)
            {
                // The handler may have reached MMIO or the MMU: the next region edge checks everything.
                _il.Emit(OpCodes.Ldc_I4_1);
                _il.Emit(OpCodes.Stloc, _slowPathRan!);
            }

            Array.Copy(after, _state, Slots);
            ReloadAfterMiss(in op, form);
            _il.MarkLabel(done);
        }
    }
}
