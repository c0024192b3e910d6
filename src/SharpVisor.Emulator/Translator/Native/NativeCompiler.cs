using System.Diagnostics;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Translator.Native;

/// <summary>
/// Encodes a block to x86-64 machine code with Iced's assembler (docs/emulator.md, "Tenth step").
/// The code is a leaf: it never calls anything, so it is entered from managed code without a GC
/// transition. Arguments (System V): rdi = the register file (every CPU field it touches is at a
/// <see cref="NativeLayout"/> offset from it), rsi = the current privilege context's TLB slots,
/// rdx = the TLB stamp, rcx = the TLB slot mask; rax, r8-r11 are scratch. Guest registers live in
/// the register file. The inline forms are the CIL tier's (<see cref="HandlerCatalog"/>) minus IMUL
/// and shifts, with the lazy flags stored as the handlers store them; a Jcc is inline when the
/// instruction that last wrote the flags is an inline form of the same block (the flags are
/// recomputed on the host from the lazy operands, so every condition is the host's own).
/// </summary>
internal static unsafe class NativeCompiler
{
    private const int TagRead = 0;
    private const int TagWrite = 8;
    private const int AddendOffset = 24;

    private static long s_compiled;
    private static long s_codeBytes;
    private static long s_encodeTicks;
    private static long s_resets;
    private static long s_failed;

    public static NativeStatistics Statistics => new(
        Interlocked.Read(ref s_compiled),
        Interlocked.Read(ref s_codeBytes),
        TimeSpan.FromTicks(Interlocked.Read(ref s_encodeTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency),
        Interlocked.Read(ref s_resets),
        Interlocked.Read(ref s_failed));

    /// <summary>Counts a block the compiler threw on (a compiler bug: the block stays interpreted).</summary>
    public static void CountFailure() => Interlocked.Increment(ref s_failed);

    /// <summary>Encodes <paramref name="block"/> (run in <paramref name="mode"/>) into <paramref name="buffer"/>; starts the buffer over when it is full.</summary>
    public static NativeBlock Compile(Block block, bool is64, NativeLayout layout, NativeCodeBuffer buffer)
    {
        long start = ThreadCpuClock.Now();
        var emitter = new Emitter(block, is64, layout);
        byte[] code = emitter.Encode(out ulong[] offsets, out bool selfLoop);
        byte* p = buffer.TryAdd(code);
        if (p is null)
        {
            buffer.Reset();
            Interlocked.Increment(ref s_resets);
            p = buffer.TryAdd(code);
            if (p is null)
            {
                throw new InvalidOperationException($"a block's native code ({code.Length} bytes) does not fit an empty code buffer");
            }
        }

        var entries = new nint[block.Count];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = offsets[i] == ulong.MaxValue ? 0 : (nint)(p + offsets[i]);
        }

        var native = new NativeBlock(block, buffer, entries, code.Length, selfLoop);
        Interlocked.Increment(ref s_compiled);
        Interlocked.Add(ref s_codeBytes, code.Length);
        Interlocked.Add(ref s_encodeTicks, ThreadCpuClock.Now() - start);
        return native;
    }

    /// <summary>The flag producer known at a point of the block: the lazy kind and size an inline form (or its handler, on a miss) stored.</summary>
    private readonly record struct KnownFlags(int Kind, int SizeIndex)
    {
        public static readonly KnownFlags Unknown = new(LazyFlags.None, 0);

        public bool IsKnown => Kind != LazyFlags.None;
    }

    private sealed class Emitter
    {
        private readonly Block _block;
        private readonly bool _is64;
        private readonly NativeLayout _layout;
        // One assembler per thread, reset for each block, rather than a new one (and its buffers) per block.
        [ThreadStatic]
        private static Assembler? t_assembler;

        private readonly Assembler _asm;
        private readonly List<(Label Label, int Index)> _returns = new();
        private readonly List<(Label Label, int Index, ulong Target)> _taken = new();
        private Label _start;
        private bool _selfLoop;

        public Emitter(Block block, bool is64, NativeLayout layout)
        {
            _block = block;
            _is64 = is64;
            _layout = layout;
            _asm = t_assembler ??= new Assembler(64);
            _asm.Reset();
        }

        public byte[] Encode(out ulong[] offsets, out bool selfLoop)
        {
            int count = _block.Count;
            var labels = new Label[count];
            for (int i = 0; i < count; i++)
            {
                labels[i] = _asm.CreateLabel();
            }

            _start = labels[0];
            var inline = new bool[count];
            KnownFlags flags = KnownFlags.Unknown;
            for (int i = 0; i < count; i++)
            {
                ref Op op = ref _block.Ops[i];
                _asm.Label(ref labels[i]);
                inline[i] = EmitOp(ref op, i, FlagsLiveAfter(i), ref flags);
                if (!inline[i])
                {
                    // The handler runs it: native code stops here, and what it did to the flags is unknown.
                    ReturnIndex(i);
                    flags = KnownFlags.Unknown;
                }
            }

            ReturnIndex(count);
            foreach ((Label label, int index) in _returns)
            {
                Label l = label;
                _asm.Label(ref l);
                ReturnIndex(index);
            }

            foreach ((Label label, int index, ulong target) in _taken)
            {
                Label l = label;
                _asm.Label(ref l);
                EmitTakenBranch(index, target);
            }

            selfLoop = _selfLoop;
            using var stream = new MemoryStream();
            AssemblerResult result = _asm.Assemble(new StreamCodeWriter(stream), 0, BlockEncoderOptions.ReturnNewInstructionOffsets);
            offsets = new ulong[count];
            for (int i = 0; i < count; i++)
            {
                offsets[i] = inline[i] ? result.GetLabelRIP(labels[i]) : ulong.MaxValue;
            }

            return stream.ToArray();
        }

        private void ReturnIndex(int index)
        {
            _asm.mov(eax, index);
            _asm.ret();
        }

        /// <summary>A label that returns <paramref name="index"/> to the managed loop (its handler then runs the instruction).</summary>
        private Label ReturnLabel(int index)
        {
            Label label = _asm.CreateLabel();
            _returns.Add((label, index));
            return label;
        }

        /// <summary>Emits op <paramref name="i"/> inline if it is an inline form here; false if its handler must run it.</summary>
        private bool EmitOp(ref Op op, int i, bool flagsLive, ref KnownFlags flags)
        {
            nint handler = (nint)op.Handler;
            if (_is64 && op.OpSize == 8)
            {
                if (handler == (nint)(delegate*<X86Cpu, ref Op, void>)&BranchHandlers.JmpRel)
                {
                    EmitTakenBranch(i, op.Imm);
                    return true;
                }

                int cc = Array.IndexOf(BranchHandlers.JccTable, handler);
                if (cc >= 0)
                {
                    if (!flags.IsKnown)
                    {
                        return false;
                    }

                    Label taken = _asm.CreateLabel();
                    _taken.Add((taken, i, op.Imm));
                    MaterializeFlags(flags);
                    JumpIf(cc, taken);
                    return true;
                }
            }

            InlineForm form = HandlerCatalog.FormOf(handler);
            if (!CanInline(in op, form))
            {
                return false;
            }

            int s = form.SizeIndex;
            switch (form.Kind)
            {
                case InlineKind.MovRR:
                    LoadReg(Rax, op.Rm, s);
                    StoreReg(Rax, op.Reg, s);
                    return true;
                case InlineKind.MovRI:
                    _asm.mov(rax, s == 2 ? (uint)op.Imm : op.Imm);
                    _asm.mov(__qword_ptr[rdi + op.Reg], rax);
                    return true;
                case InlineKind.Lea:
                    EffectiveAddress(in op);
                    StoreReg(Rax, op.Reg, s);
                    return true;
                case InlineKind.AluRR:
                    LoadReg(Rax, op.Reg, s);
                    LoadReg(R9, op.Rm, s);
                    Alu(in op, form, flagsLive);
                    flags = flagsLive ? Produced(form) : KnownFlags.Unknown;
                    return true;
                case InlineKind.AluRI:
                    LoadReg(Rax, op.Reg, s);
                    _asm.mov(r9, Truncate(op.Imm, s));
                    Alu(in op, form, flagsLive);
                    flags = flagsLive ? Produced(form) : KnownFlags.Unknown;
                    return true;
                case InlineKind.ShiftRI:
                    int count = (int)(op.Imm & (s == 3 ? 0x3FUL : 0x1FUL));
                    if (flagsLive && count != 0)
                    {
                        // The flag rules (OF of rotates by more than one, ...) stay with the handler.
                        return false;
                    }

                    EmitShift(in op, s, count);
                    if (count != 0)
                    {
                        flags = KnownFlags.Unknown;
                    }

                    return true;
                case InlineKind.ImulR:
                    if (flagsLive || (op.Aux != 0 && s == 3 && (long)op.Imm != (int)op.Imm))
                    {
                        return false;
                    }

                    EmitImul(in op, s);
                    flags = KnownFlags.Unknown;
                    return true;
                case InlineKind.IncDecR:
                    if (!flags.IsKnown)
                    {
                        return false;
                    }

                    EmitIncDec(in op, form, flags);
                    flags = Produced(form);
                    return true;
                case InlineKind.MovRM:
                    Linear(in op);
                    TlbCheck(write: false, 1 << s, ReturnLabel(i));
                    LoadHost(Rax, s);
                    StoreReg(Rax, op.Reg, s);
                    return true;
                case InlineKind.MovMR:
                case InlineKind.MovMI:
                    Linear(in op);
                    TlbCheck(write: true, 1 << s, ReturnLabel(i));
                    if (form.Kind == InlineKind.MovMR)
                    {
                        _asm.mov(r9, __qword_ptr[rdi + op.Reg]);
                    }
                    else
                    {
                        _asm.mov(r9, op.Imm);
                    }

                    StoreHost(R9, s);
                    return true;
                case InlineKind.AluRM:
                    Linear(in op);
                    TlbCheck(write: false, 1 << s, ReturnLabel(i));
                    LoadHost(R9, s);
                    LoadReg(Rax, op.Reg, s);
                    Alu(in op, form, flagsLive: true);
                    flags = Produced(form);
                    return true;
                case InlineKind.AluMR:
                case InlineKind.AluMI:
                    Linear(in op);
                    TlbCheck(write: false, 1 << s, ReturnLabel(i));
                    if (form.Kind == InlineKind.AluMR)
                    {
                        LoadReg(R9, op.Reg, s);
                    }
                    else
                    {
                        _asm.mov(r9, Truncate(op.Imm, s));
                    }

                    LoadHost(Rax, s);
                    Alu(in op, form, flagsLive: true);
                    flags = Produced(form);
                    return true;
                case InlineKind.PushR:
                case InlineKind.PushI:
                    // The value first (PUSH RSP pushes the old RSP), then the store below RSP.
                    if (form.Kind == InlineKind.PushR)
                    {
                        _asm.mov(r11, __qword_ptr[rdi + op.Reg]);
                    }
                    else
                    {
                        _asm.mov(r11, op.Imm);
                    }

                    _asm.mov(rax, __qword_ptr[rdi + (X86Cpu.Rsp * 8)]);
                    _asm.sub(rax, 8);
                    _asm.mov(r8, rax);
                    TlbCheck(write: true, 8, ReturnLabel(i));
                    _asm.mov(__qword_ptr[rax], r11);
                    _asm.mov(__qword_ptr[rdi + (X86Cpu.Rsp * 8)], r8);
                    return true;
                case InlineKind.PopR:
                    _asm.mov(rax, __qword_ptr[rdi + (X86Cpu.Rsp * 8)]);
                    _asm.mov(r8, rax);
                    TlbCheck(write: false, 8, ReturnLabel(i));
                    _asm.mov(r11, __qword_ptr[rax]);
                    _asm.add(r8, 8);
                    _asm.mov(__qword_ptr[rdi + (X86Cpu.Rsp * 8)], r8);
                    _asm.mov(__qword_ptr[rdi + op.Reg], r11);
                    return true;
                default:
                    return false;
            }
        }

        /// <summary>Whole 64-bit register slots only (no AH..BH); memory and stack forms in 64-bit mode (no segment checks), no LOCK.</summary>
        /// <summary>
        /// Whether the flags op <paramref name="i"/> writes can be observed: not when the next
        /// flag writer is a register ALU op or register IMUL (writers of all six status flags that
        /// cannot fault) and only register moves and LEA come between (nothing that can fault,
        /// leave or read flags).
        /// </summary>
        private bool FlagsLiveAfter(int i)
        {
            for (int j = i + 1; j < _block.Count; j++)
            {
                ref Op next = ref _block.Ops[j];
                InlineForm form = HandlerCatalog.FormOf((nint)next.Handler);
                if (!CanInline(in next, form))
                {
                    return true;
                }

                switch (form.Kind)
                {
                    case InlineKind.AluRR:
                    case InlineKind.AluRI:
                        return false;
                    case InlineKind.ImulR when (next.Flags & OpFlags.Memory) == 0:
                        return false;
                    case InlineKind.MovRR:
                    case InlineKind.MovRI:
                    case InlineKind.Lea:
                        continue;
                    default:
                        return true;
                }
            }

            return true;
        }

        private bool CanInline(in Op op, InlineForm form)
        {
            // The catalog is the CIL tier's: forms it inlines that this back end does not emit yet
            // (ADC's and SBB's carry-in; memory operands of 8 and 16 bits; shifts by CL, NEG, NOT,
            // BSWAP and DIV, which the switch below does not list) stay with their handlers.
            if (form.Kind == InlineKind.None || (op.Flags & OpFlags.Lock) != 0 || form.Alu is InlineAlu.Adc or InlineAlu.Sbb)
            {
                return false;
            }

            // Read-modify-write ALU forms and INC/DEC of memory (the CIL tier's since its fourteenth step): not emitted here.
            if (form.Kind is InlineKind.AluMR or InlineKind.AluMI && form.Alu is not (InlineAlu.Cmp or InlineAlu.Test))
            {
                return false;
            }

            bool narrowMemory = form.SizeIndex < 2 && form.Kind is InlineKind.MovRM or InlineKind.MovMR or InlineKind.MovMI
                or InlineKind.AluRM or InlineKind.AluMR or InlineKind.AluMI;
            if (narrowMemory)
            {
                return false;
            }

            bool regOk = op.Reg % 8 == 0 && op.Reg < 128;
            bool rmOk = op.Rm % 8 == 0 && op.Rm < 128;
            bool addressOk = op.Base < RegisterFile.Slots && op.Index < RegisterFile.Slots && op.AddrSize is 2 or 4 or 8 && op.Seg <= 6;
            return form.Kind switch
            {
                InlineKind.MovRR or InlineKind.AluRR => regOk && rmOk,
                InlineKind.ImulR => regOk && rmOk && (op.Flags & OpFlags.Memory) == 0,
                InlineKind.ShiftRI => regOk && op.Aux is not (ShiftSemantics.Rcl or ShiftSemantics.Rcr),
                InlineKind.MovRI or InlineKind.AluRI or InlineKind.IncDecR => regOk,
                InlineKind.Lea => regOk && addressOk,
                InlineKind.MovRM or InlineKind.MovMR or InlineKind.AluRM or InlineKind.AluMR or InlineKind.PushR or InlineKind.PopR
                    => _is64 && regOk && addressOk,
                InlineKind.MovMI or InlineKind.AluMI or InlineKind.PushI => _is64 && addressOk,
                _ => false,
            };
        }

        private static ulong Truncate(ulong value, int sizeIndex) => value & LazyFlags.Masks[sizeIndex];

        private static KnownFlags Produced(InlineForm form) => new(
            form.Kind == InlineKind.IncDecR
                ? (form.Alu == InlineAlu.Add ? LazyFlags.Inc : LazyFlags.Dec)
                : form.Alu switch
                {
                    InlineAlu.Add => LazyFlags.Add,
                    InlineAlu.Sub or InlineAlu.Cmp => LazyFlags.Sub,
                    _ => LazyFlags.Logic,
                },
            form.SizeIndex);

        // ---- Registers ------------------------------------------------------------------

        private enum Host
        {
            Rax,
            R8,
            R9,
            R10,
            R11,
        }

        private const Host Rax = Host.Rax;
        private const Host R8 = Host.R8;
        private const Host R9 = Host.R9;
        private const Host R10 = Host.R10;

        private static AssemblerRegister64 Q(Host h) => h switch { Host.Rax => rax, Host.R8 => r8, Host.R9 => r9, Host.R10 => r10, _ => r11 };

        private static AssemblerRegister32 D(Host h) => h switch { Host.Rax => eax, Host.R8 => r8d, Host.R9 => r9d, Host.R10 => r10d, _ => r11d };

        private static AssemblerRegister16 W(Host h) => h switch { Host.Rax => ax, Host.R8 => r8w, Host.R9 => r9w, Host.R10 => r10w, _ => r11w };

        private static AssemblerRegister8 B(Host h) => h switch { Host.Rax => al, Host.R8 => r8b, Host.R9 => r9b, Host.R10 => r10b, _ => r11b };

        /// <summary>Loads the low <paramref name="sizeIndex"/> part of the register at byte offset <paramref name="offset"/>, zero-extended.</summary>
        private void LoadReg(Host h, int offset, int sizeIndex)
        {
            switch (sizeIndex)
            {
                case 3:
                    _asm.mov(Q(h), __qword_ptr[rdi + offset]);
                    break;
                case 2:
                    _asm.mov(D(h), __dword_ptr[rdi + offset]);
                    break;
                case 1:
                    _asm.movzx(D(h), __word_ptr[rdi + offset]);
                    break;
                default:
                    _asm.movzx(D(h), __byte_ptr[rdi + offset]);
                    break;
            }
        }

        /// <summary>Writes a register as the handlers' WriteReg does: 32-bit zero-extends, 8/16-bit keep the upper bits.</summary>
        private void StoreReg(Host h, int offset, int sizeIndex)
        {
            switch (sizeIndex)
            {
                case 3:
                    _asm.mov(__qword_ptr[rdi + offset], Q(h));
                    break;
                case 2:
                    _asm.mov(D(h), D(h));
                    _asm.mov(__qword_ptr[rdi + offset], Q(h));
                    break;
                case 1:
                    _asm.mov(__word_ptr[rdi + offset], W(h));
                    break;
                default:
                    _asm.mov(__byte_ptr[rdi + offset], B(h));
                    break;
            }
        }

        private void LoadHost(Host h, int sizeIndex)
        {
            if (sizeIndex == 3)
            {
                _asm.mov(Q(h), __qword_ptr[rax]);
            }
            else
            {
                _asm.mov(D(h), __dword_ptr[rax]);
            }
        }

        private void StoreHost(Host h, int sizeIndex)
        {
            if (sizeIndex == 3)
            {
                _asm.mov(__qword_ptr[rax], Q(h));
            }
            else
            {
                _asm.mov(__dword_ptr[rax], D(h));
            }
        }

        // ---- ALU and flags --------------------------------------------------------------

        /// <summary>a in rax, b in r9 (both zero-extended from the operand size): the result, the destination, then the lazy flags as the handler's SetFlags writes them.</summary>
        private void Alu(in Op op, InlineForm form, bool flagsLive)
        {
            int s = form.SizeIndex;
            _asm.mov(r8, rax);
            switch (form.Alu)
            {
                case InlineAlu.Add:
                    _asm.add(rax, r9);
                    break;
                case InlineAlu.Sub:
                case InlineAlu.Cmp:
                    _asm.sub(rax, r9);
                    break;
                case InlineAlu.And:
                case InlineAlu.Test:
                    _asm.and(rax, r9);
                    break;
                case InlineAlu.Or:
                    _asm.or(rax, r9);
                    break;
                default:
                    _asm.xor(rax, r9);
                    break;
            }

            bool writes = form.Alu is not (InlineAlu.Cmp or InlineAlu.Test);
            if (writes && form.Kind is InlineKind.AluRR or InlineKind.AluRI or InlineKind.AluRM)
            {
                StoreReg(Rax, op.Reg, s);
            }

            if (!flagsLive)
            {
                // The next flag writer follows before anything can observe these (dead stores).
                return;
            }

            KnownFlags produced = Produced(form);
            _asm.mov(__dword_ptr[rdi + _layout.Lazy], (produced.Kind << 2) | s);
            if (produced.Kind == LazyFlags.Logic)
            {
                _asm.xor(r8d, r8d);
                _asm.mov(__qword_ptr[rdi + _layout.LazyA], r8);
                _asm.mov(__qword_ptr[rdi + _layout.LazyB], r8);
            }
            else
            {
                _asm.mov(__qword_ptr[rdi + _layout.LazyA], r8);
                _asm.mov(__qword_ptr[rdi + _layout.LazyB], r9);
            }

            SignExtend(R10, Rax, s);
            _asm.mov(__qword_ptr[rdi + _layout.LazyRes], r10);
        }

        /// <summary>A shift or rotate of a register by a constant, result only (its flags are dead, or the count is zero and changes none); a 32-bit destination is written even for a zero count.</summary>
        private void EmitShift(in Op op, int sizeIndex, int count)
        {
            LoadReg(Rax, op.Reg, sizeIndex);
            if (count != 0)
            {
                var c = (byte)count;
                bool wide = sizeIndex == 3;
                switch (op.Aux)
                {
                    case ShiftSemantics.Rol:
                        if (wide) { _asm.rol(rax, c); } else { _asm.rol(eax, c); }
                        break;
                    case ShiftSemantics.Ror:
                        if (wide) { _asm.ror(rax, c); } else { _asm.ror(eax, c); }
                        break;
                    case ShiftSemantics.Shl:
                    case ShiftSemantics.Sal:
                        if (wide) { _asm.shl(rax, c); } else { _asm.shl(eax, c); }
                        break;
                    case ShiftSemantics.Shr:
                        if (wide) { _asm.shr(rax, c); } else { _asm.shr(eax, c); }
                        break;
                    default:
                        if (wide) { _asm.sar(rax, c); } else { _asm.sar(eax, c); }
                        break;
                }
            }
            else if (sizeIndex == 3)
            {
                return;
            }

            StoreReg(Rax, op.Reg, sizeIndex);
        }

        /// <summary>IMUL r, r / r, r, imm with dead flags: the low product only.</summary>
        private void EmitImul(in Op op, int sizeIndex)
        {
            bool wide = sizeIndex == 3;
            LoadReg(R9, op.Rm, sizeIndex);
            if (op.Aux != 0)
            {
                if (wide) { _asm.imul(rax, r9, (int)op.Imm); } else { _asm.imul(eax, r9d, (int)op.Imm); }
            }
            else
            {
                LoadReg(Rax, op.Reg, sizeIndex);
                if (wide) { _asm.imul(rax, r9); } else { _asm.imul(eax, r9d); }
            }

            StoreReg(Rax, op.Reg, sizeIndex);
        }

        private void SignExtend(Host to, Host from, int sizeIndex)
        {
            switch (sizeIndex)
            {
                case 3:
                    _asm.mov(Q(to), Q(from));
                    break;
                case 2:
                    _asm.movsxd(Q(to), D(from));
                    break;
                case 1:
                    _asm.movsx(Q(to), W(from));
                    break;
                default:
                    _asm.movsx(Q(to), B(from));
                    break;
            }
        }

        /// <summary>INC/DEC r: CF is kept, read from the known producer's lazy state into _lazyCarry as the handler does.</summary>
        private void EmitIncDec(in Op op, InlineForm form, KnownFlags before)
        {
            int s = form.SizeIndex;
            MaterializeFlags(before);
            _asm.setb(r11b);
            _asm.movzx(r11d, r11b);
            _asm.mov(__qword_ptr[rdi + _layout.LazyCarry], r11);
            LoadReg(Rax, op.Reg, s);
            _asm.mov(r8, rax);
            if (form.Alu == InlineAlu.Add)
            {
                _asm.add(rax, 1);
            }
            else
            {
                _asm.sub(rax, 1);
            }

            StoreReg(Rax, op.Reg, s);
            _asm.mov(__dword_ptr[rdi + _layout.Lazy], ((form.Alu == InlineAlu.Add ? LazyFlags.Inc : LazyFlags.Dec) << 2) | s);
            _asm.mov(__qword_ptr[rdi + _layout.LazyA], r8);
            _asm.mov(__qword_ptr[rdi + _layout.LazyB], 1);
            SignExtend(R10, Rax, s);
            _asm.mov(__qword_ptr[rdi + _layout.LazyRes], r10);
        }

        /// <summary>
        /// Sets the host's arithmetic flags to the guest's by redoing the known producer on its
        /// lazy operands at its size: the host computes O, S, Z, P and C exactly as the guest's
        /// instruction does (CMP/SUB, ADD, a logic result tested, INC/DEC with the kept carry).
        /// </summary>
        private void MaterializeFlags(KnownFlags flags)
        {
            int s = flags.SizeIndex;
            switch (flags.Kind)
            {
                case LazyFlags.Sub:
                case LazyFlags.Add:
                    _asm.mov(r8, __qword_ptr[rdi + _layout.LazyA]);
                    _asm.mov(r9, __qword_ptr[rdi + _layout.LazyB]);
                    if (flags.Kind == LazyFlags.Sub)
                    {
                        Binary(s, (a, b) => _asm.cmp(a, b), (a, b) => _asm.cmp(a, b), (a, b) => _asm.cmp(a, b), (a, b) => _asm.cmp(a, b));
                    }
                    else
                    {
                        Binary(s, (a, b) => _asm.add(a, b), (a, b) => _asm.add(a, b), (a, b) => _asm.add(a, b), (a, b) => _asm.add(a, b));
                    }

                    break;
                case LazyFlags.Logic:
                    _asm.mov(r8, __qword_ptr[rdi + _layout.LazyRes]);
                    Binary(s, (a, _) => _asm.test(a, a), (a, _) => _asm.test(a, a), (a, _) => _asm.test(a, a), (a, _) => _asm.test(a, a));
                    break;
                case LazyFlags.Inc:
                case LazyFlags.Dec:
                    _asm.mov(r10, __qword_ptr[rdi + _layout.LazyCarry]);
                    _asm.mov(r8, __qword_ptr[rdi + _layout.LazyA]);
                    _asm.neg(r10); // CF = the kept carry (0 or 1); INC/DEC below leave CF alone
                    bool inc = flags.Kind == LazyFlags.Inc;
                    switch (s)
                    {
                        case 3:
                            if (inc) { _asm.inc(r8); } else { _asm.dec(r8); }
                            break;
                        case 2:
                            if (inc) { _asm.inc(r8d); } else { _asm.dec(r8d); }
                            break;
                        case 1:
                            if (inc) { _asm.inc(r8w); } else { _asm.dec(r8w); }
                            break;
                        default:
                            if (inc) { _asm.inc(r8b); } else { _asm.dec(r8b); }
                            break;
                    }

                    break;
                default:
                    throw new InvalidOperationException($"no host flags for lazy kind {flags.Kind}");
            }
        }

        /// <summary>r8 op r9 at the operand size.</summary>
        private static void Binary(
            int sizeIndex,
            Action<AssemblerRegister64, AssemblerRegister64> q,
            Action<AssemblerRegister32, AssemblerRegister32> d,
            Action<AssemblerRegister16, AssemblerRegister16> w,
            Action<AssemblerRegister8, AssemblerRegister8> b)
        {
            switch (sizeIndex)
            {
                case 3:
                    q(r8, r9);
                    break;
                case 2:
                    d(r8d, r9d);
                    break;
                case 1:
                    w(r8w, r9w);
                    break;
                default:
                    b(r8b, r9b);
                    break;
            }
        }

        private void JumpIf(int cc, Label target)
        {
            switch (cc)
            {
                case 0: _asm.jo(target); break;
                case 1: _asm.jno(target); break;
                case 2: _asm.jb(target); break;
                case 3: _asm.jae(target); break;
                case 4: _asm.je(target); break;
                case 5: _asm.jne(target); break;
                case 6: _asm.jbe(target); break;
                case 7: _asm.ja(target); break;
                case 8: _asm.js(target); break;
                case 9: _asm.jns(target); break;
                case 10: _asm.jp(target); break;
                case 11: _asm.jnp(target); break;
                case 12: _asm.jl(target); break;
                case 13: _asm.jge(target); break;
                case 14: _asm.jle(target); break;
                default: _asm.jg(target); break;
            }
        }

        /// <summary>A taken JMP/Jcc (64-bit operand size): RIP = block RIP + offset unless non-canonical (the handler raises #GP), leave the block after it.</summary>
        private void EmitTakenBranch(int i, ulong offset)
        {
            if (offset == 0)
            {
                // A branch to the block's own start: round again while the loop budget (guest
                // instructions beyond one whole block that may still retire here) covers this
                // iteration and no stop (or breakpoint) is asked for; else leave as the handler
                // would. Events wait for the budget's end (at most NativeLoopCap instructions).
                Label leave = _asm.CreateLabel();
                _asm.test(__dword_ptr[rdi + _layout.Attention], _layout.AttentionLeaveMask);
                _asm.jne(leave);
                _asm.mov(eax, __dword_ptr[rdi + _layout.LoopBudget]);
                _asm.sub(eax, i + 1);
                _asm.jb(leave);
                _asm.mov(__dword_ptr[rdi + _layout.LoopBudget], eax);
                _asm.jmp(_start);
                _asm.Label(ref leave);
                _selfLoop = true;
            }

            _asm.mov(rax, __qword_ptr[rdi + (RegisterFile.BlockRip * 8)]);
            _asm.mov(r9, offset);
            _asm.add(rax, r9);
            _asm.mov(r9, rax);
            _asm.shl(r9, 16);
            _asm.sar(r9, 16);
            _asm.cmp(r9, rax);
            _asm.jne(ReturnLabel(i));
            _asm.mov(__qword_ptr[rdi + _layout.Rip], rax);
            _asm.mov(__dword_ptr[rdi + _layout.ExitBlock], X86Cpu.ExitJump);
            ReturnIndex(i + 1);
        }

        // ---- Memory ---------------------------------------------------------------------

        /// <summary>rax = the operand's effective address, masked to the address size.</summary>
        private void EffectiveAddress(in Op op)
        {
            if (op.Base != RegisterFile.Zero)
            {
                _asm.mov(rax, __qword_ptr[rdi + (op.Base * 8)]);
            }
            else
            {
                _asm.xor(eax, eax);
            }

            if (op.Index != RegisterFile.Zero)
            {
                _asm.mov(r9, __qword_ptr[rdi + (op.Index * 8)]);
                if (op.Scale != 0)
                {
                    _asm.shl(r9, op.Scale);
                }

                _asm.add(rax, r9);
            }

            if (op.Disp != 0)
            {
                if ((long)op.Disp == (int)op.Disp)
                {
                    _asm.add(rax, (int)op.Disp);
                }
                else
                {
                    _asm.mov(r9, op.Disp);
                    _asm.add(rax, r9);
                }
            }

            if (op.AddrSize == 4)
            {
                _asm.mov(eax, eax);
            }
            else if (op.AddrSize == 2)
            {
                _asm.movzx(eax, ax);
            }
        }

        /// <summary>rax = the operand's linear address (64-bit mode: FS/GS bases only; a non-canonical address misses the TLB).</summary>
        private void Linear(in Op op)
        {
            EffectiveAddress(in op);
            if (op.Seg is X86Cpu.SegFs or X86Cpu.SegGs)
            {
                _asm.add(rax, __qword_ptr[rdi + _layout.SegBase + (op.Seg * 8)]);
            }
        }

        /// <summary>The TLB hit check (X86Cpu.TlbFor and Tag, the interpreter's fast path) on rax: on a hit rax becomes the host address, else to <paramref name="miss"/> with no guest state changed.</summary>
        private void TlbCheck(bool write, int size, Label miss)
        {
            _asm.mov(r9, rax);
            _asm.shr(r9, 12);
            _asm.and(r9, rcx);
            _asm.shl(r9, 5);
            _asm.add(r9, rsi);
            _asm.mov(r10, rax);
            _asm.and(r10, -4096);
            _asm.or(r10, rdx);
            _asm.cmp(r10, __qword_ptr[r9 + (write ? TagWrite : TagRead)]);
            _asm.jne(miss);
            if (size > 1)
            {
                _asm.mov(r10d, eax);
                _asm.and(r10d, 0xFFF);
                _asm.cmp(r10d, 0x1000 - size);
                _asm.ja(miss);
            }

            _asm.add(rax, __qword_ptr[r9 + AddendOffset]);
        }
    }
}
