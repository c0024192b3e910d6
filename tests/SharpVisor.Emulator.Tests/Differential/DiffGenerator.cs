using System.Text;
using Iced.Intel;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// Generates reproducible random cases per instruction family: register and memory states
/// biased towards edge values and window pointers, and short instruction sequences built from
/// Iced's opcode tables (every encodable form of each family's mnemonics).
/// </summary>
internal sealed partial class DiffGenerator
{
    private static readonly Register[] s_gpr64 =
        [Register.RAX, Register.RCX, Register.RDX, Register.RBX, Register.RSP, Register.RBP, Register.RSI, Register.RDI,
         Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15];

    private static readonly Dictionary<string, Family> s_families = BuildFamilies();

    public static IReadOnlyList<string> FamilyNames { get; } = s_families.Keys.ToArray();

    /// <summary>The generated case <paramref name="index"/> of <paramref name="family"/> for run seed <paramref name="seed"/>.</summary>
    public static DiffCase Generate(string family, ulong seed, int index)
    {
        if (!s_families.TryGetValue(family, out Family? f))
        {
            throw new ArgumentException($"unknown differential family '{family}'", nameof(family));
        }

        var rng = new CaseRandom(SplitMix.Derive(seed, family, index));
        var c = new DiffCase { Family = family, Seed = seed, Index = index };
        var g = new CaseBuilder(rng, c, f);
        g.InitializeState();
        f.Build(g);
        g.Encode();
        return c;
    }

    /// <summary>A family: its instruction forms and how to assemble a case from them.</summary>
    internal sealed class Family
    {
        public required string Name { get; init; }

        public Code[] Codes { get; init; } = [];

        public required Action<CaseBuilder> Build { get; init; }

        /// <summary>Instructions may write the pointer registers (string instructions advance rSI/rDI).</summary>
        public bool AllowPointerWrites { get; init; }
    }

    /// <summary>Every legacy-encoded 64-bit-mode form of <paramref name="mnemonics"/> whose operands the builder can fill.</summary>
    internal static Code[] CodesFor(Func<Code, bool>? filter, params Mnemonic[] mnemonics)
    {
        var set = new HashSet<Mnemonic>(mnemonics);
        var codes = new List<Code>();
        foreach (Code code in Enum.GetValues<Code>())
        {
            if (code == Code.INVALID)
            {
                continue;
            }

            OpCodeInfo info = code.ToOpCode();
            if (!set.Contains(code.Mnemonic()) || !info.Mode64 || info.Encoding is not (EncodingKind.Legacy or EncodingKind.VEX))
            {
                continue;
            }

            if (info.Encoding == EncodingKind.VEX && info.L != 0 && info.Mnemonic is not (Mnemonic.Andn))
            {
                continue;
            }

            bool fillable = true;
            for (int i = 0; i < info.OpCount; i++)
            {
                fillable &= CaseBuilder.CanFill(info.GetOpKind(i));
            }

            if (fillable && (filter is null || filter(code)))
            {
                codes.Add(code);
            }
        }

        return codes.ToArray();
    }

    /// <summary>Builds one case: the state, a list of instructions (branches refer to later items), and the encoding.</summary>
    internal sealed class CaseBuilder
    {
        private readonly List<(Instruction Ins, int Target)> _items = new();
        private readonly InstructionInfoFactory _info = new();
        private ulong _undefined;

        public CaseBuilder(CaseRandom rng, DiffCase c, Family family)
        {
            Random = rng;
            Case = c;
            Family = family;
        }

        public CaseRandom Random { get; }

        public DiffCase Case { get; }

        public Family Family { get; }

        /// <summary>Registers that point into the data window (bases for memory operands).</summary>
        public List<Register> Pointers { get; } = new();

        /// <summary>Registers with small values (scaled indexes).</summary>
        public List<Register> Smalls { get; } = new();

        public int Count => _items.Count;

        public void InitializeState()
        {
            CaseRandom r = Random;
            Case.MemorySeed = r.Next();
            var candidates = new List<Register> { Register.RBX, Register.RBP, Register.RSI, Register.RDI, Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15 };
            for (int i = 0; i < 16; i++)
            {
                Case.Gpr[i] = r.Value();
            }

            for (int i = 0; i < 3; i++)
            {
                Register p = candidates[r.Below(candidates.Count)];
                candidates.Remove(p);
                Pointers.Add(p);
                SetRegister(p, PointerValue());
            }

            for (int i = 0; i < 2; i++)
            {
                Register s = candidates[r.Below(candidates.Count)];
                candidates.Remove(s);
                Smalls.Add(s);
                SetRegister(s, (ulong)r.Below(16));
            }

            ulong rsp = DiffCase.DataBase + 0x1000 + (ulong)(r.Below(0x400) - 0x200);
            SetRegister(Register.RSP, r.Chance(0.9) ? rsp & ~7UL : rsp);
            ulong flags = r.Next() & (RflagsBits.Arithmetic | RflagsBits.Direction);
            if (r.Chance(0.7))
            {
                flags &= ~RflagsBits.Direction;
            }

            Case.Rflags = flags | 0x202;

            // Random XMM contents and a valid MXCSR (all exceptions masked unless a family says otherwise).
            for (int i = 0; i < 16; i++)
            {
                BitConverter.TryWriteBytes(Case.Fx.AsSpan(160 + (16 * i)), r.Value());
                BitConverter.TryWriteBytes(Case.Fx.AsSpan(168 + (16 * i)), r.Value());
            }
        }

        public ulong PointerValue()
        {
            ulong offset = 0x100 + (ulong)Random.Below(DiffCase.DataSize - 0x200);
            return DiffCase.DataBase + (Random.Chance(0.7) ? offset & ~7UL : offset);
        }

        public void SetRegister(Register r, ulong value) => Case.Gpr[r.GetFullRegister() - Register.RAX] = value;

        public ulong GetRegister(Register r) => Case.Gpr[r.GetFullRegister() - Register.RAX];

        public void Patch(int offset, byte[] bytes) => Case.Patches.Add(((ushort)offset, bytes));

        /// <summary>Adds a random instance of one of <paramref name="codes"/>; returns false if none could be built.</summary>
        public bool AddRandom(Code[] codes, int attempts = 20)
        {
            for (int a = 0; a < attempts; a++)
            {
                Code code = codes[Random.Below(codes.Length)];
                if (TryBuild(code, out Instruction ins) && Acceptable(in ins))
                {
                    Add(ins);
                    return true;
                }
            }

            return false;
        }

        /// <summary>Appends an instruction; inserts a flag-defining CMP first if it would read a flag left undefined.</summary>
        public void Add(Instruction ins, int target = -1)
        {
            ulong read = (ulong)ins.RflagsRead;
            if ((read & _undefined) != 0)
            {
                Instruction cmp = Instruction.Create(Code.Cmp_r64_rm64, Pick64(), Pick64());
                _items.Add((cmp, -1));
                _undefined = 0;
            }

            _undefined = (_undefined & ~(ulong)ins.RflagsModified) | (ulong)ins.RflagsUndefined;
            _items.Add((ins, target));
        }

        /// <summary>Appends a relative branch to item <paramref name="target"/> (Count = the end).</summary>
        public void AddBranch(Code code, int target)
        {
            var ins = Instruction.CreateBranch(code, DiffCase.CodeBase);
            Add(ins, target);
        }

        private Register Pick64()
        {
            Register r;
            do
            {
                r = s_gpr64[Random.Below(16)];
            }
            while (r == Register.RSP);
            return r;
        }

        private bool Acceptable(in Instruction ins)
        {
            InstructionInfo info = _info.GetInfo(ins);
            foreach (UsedRegister used in info.GetUsedRegisters())
            {
                if (used.Access is OpAccess.Write or OpAccess.ReadWrite or OpAccess.CondWrite or OpAccess.ReadCondWrite)
                {
                    Register full = used.Register.GetFullRegister();
                    if (!Family.AllowPointerWrites && Pointers.Contains(full) && Random.Chance(0.95))
                    {
                        return false;
                    }
                }
            }

            return true;
        }

        public static bool CanFill(OpCodeOperandKind kind) => kind switch
        {
            OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem
                or OpCodeOperandKind.mem or OpCodeOperandKind.r8_reg or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r32_reg
                or OpCodeOperandKind.r64_reg or OpCodeOperandKind.r8_opcode or OpCodeOperandKind.r16_opcode or OpCodeOperandKind.r32_opcode
                or OpCodeOperandKind.r64_opcode or OpCodeOperandKind.r16_rm or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r64_rm
                or OpCodeOperandKind.r32_vvvv or OpCodeOperandKind.r64_vvvv
                or OpCodeOperandKind.al or OpCodeOperandKind.cl or OpCodeOperandKind.ax or OpCodeOperandKind.eax or OpCodeOperandKind.rax
                or OpCodeOperandKind.imm8 or OpCodeOperandKind.imm8_const_1 or OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32
                or OpCodeOperandKind.imm8sex64 or OpCodeOperandKind.imm16 or OpCodeOperandKind.imm32 or OpCodeOperandKind.imm32sex64
                or OpCodeOperandKind.imm64
                or OpCodeOperandKind.xmm_or_mem or OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm
                or OpCodeOperandKind.mm_or_mem or OpCodeOperandKind.mm_reg or OpCodeOperandKind.mm_rm
                or OpCodeOperandKind.st0 or OpCodeOperandKind.sti_opcode => true,
            _ => false,
        };

        /// <summary>Fills the operands of <paramref name="code"/> at random.</summary>
        public bool TryBuild(Code code, out Instruction ins)
        {
            OpCodeInfo info = code.ToOpCode();
            ins = default;
            ins.Code = code;
            bool memoryUsed = false;
            bool anyHighByte = false;
            for (int i = 0; i < info.OpCount; i++)
            {
                OpCodeOperandKind kind = info.GetOpKind(i);
                switch (kind)
                {
                    case OpCodeOperandKind.r8_or_mem:
                    case OpCodeOperandKind.r16_or_mem:
                    case OpCodeOperandKind.r32_or_mem:
                    case OpCodeOperandKind.r64_or_mem:
                    case OpCodeOperandKind.xmm_or_mem:
                    case OpCodeOperandKind.mm_or_mem:
                        if (!memoryUsed && Random.Chance(0.45))
                        {
                            SetMemory(ref ins, i);
                            memoryUsed = true;
                        }
                        else
                        {
                            ins.SetOpKind(i, OpKind.Register);
                            ins.SetOpRegister(i, RegisterFor(kind, ref anyHighByte));
                        }

                        break;
                    case OpCodeOperandKind.mem:
                        SetMemory(ref ins, i);
                        memoryUsed = true;
                        break;
                    case OpCodeOperandKind.al: SetFixed(ref ins, i, Register.AL); break;
                    case OpCodeOperandKind.cl: SetFixed(ref ins, i, Register.CL); break;
                    case OpCodeOperandKind.ax: SetFixed(ref ins, i, Register.AX); break;
                    case OpCodeOperandKind.eax: SetFixed(ref ins, i, Register.EAX); break;
                    case OpCodeOperandKind.rax: SetFixed(ref ins, i, Register.RAX); break;
                    case OpCodeOperandKind.st0: SetFixed(ref ins, i, Register.ST0); break;
                    case OpCodeOperandKind.imm8:
                        ins.SetOpKind(i, OpKind.Immediate8);
                        ins.SetImmediate(i, (byte)Random.Value());
                        break;
                    case OpCodeOperandKind.imm8_const_1:
                        ins.SetOpKind(i, OpKind.Immediate8);
                        ins.SetImmediate(i, 1);
                        break;
                    case OpCodeOperandKind.imm8sex16:
                        ins.SetOpKind(i, OpKind.Immediate8to16);
                        ins.SetImmediate(i, (long)(sbyte)Random.Value());
                        break;
                    case OpCodeOperandKind.imm8sex32:
                        ins.SetOpKind(i, OpKind.Immediate8to32);
                        ins.SetImmediate(i, (long)(sbyte)Random.Value());
                        break;
                    case OpCodeOperandKind.imm8sex64:
                        ins.SetOpKind(i, OpKind.Immediate8to64);
                        ins.SetImmediate(i, (long)(sbyte)Random.Value());
                        break;
                    case OpCodeOperandKind.imm16:
                        ins.SetOpKind(i, OpKind.Immediate16);
                        ins.SetImmediate(i, (ushort)Random.Value());
                        break;
                    case OpCodeOperandKind.imm32:
                        ins.SetOpKind(i, OpKind.Immediate32);
                        ins.SetImmediate(i, (uint)Random.Value());
                        break;
                    case OpCodeOperandKind.imm32sex64:
                        ins.SetOpKind(i, OpKind.Immediate32to64);
                        ins.SetImmediate(i, (long)(int)Random.Value());
                        break;
                    case OpCodeOperandKind.imm64:
                        ins.SetOpKind(i, OpKind.Immediate64);
                        ins.SetImmediate(i, Random.Value());
                        break;
                    default:
                        if (!CanFill(kind))
                        {
                            return false;
                        }

                        ins.SetOpKind(i, OpKind.Register);
                        ins.SetOpRegister(i, RegisterFor(kind, ref anyHighByte));
                        break;
                }
            }

            if (memoryUsed && info.CanUseLockPrefix && Random.Chance(0.3))
            {
                ins.HasLockPrefix = true;
            }

            if (memoryUsed && ins.MemorySize.GetSize() >= 16 && Random.Chance(0.85))
            {
                AlignMemory(ref ins, ins.MemorySize.GetSize() >= 512 ? 64 : 16);
            }

            return true;
        }

        private static void SetFixed(ref Instruction ins, int i, Register r)
        {
            ins.SetOpKind(i, OpKind.Register);
            ins.SetOpRegister(i, r);
        }

        private Register RegisterFor(OpCodeOperandKind kind, ref bool anyHighByte)
        {
            switch (kind)
            {
                case OpCodeOperandKind.xmm_or_mem:
                case OpCodeOperandKind.xmm_reg:
                case OpCodeOperandKind.xmm_rm:
                    return Register.XMM0 + Random.Below(16);
                case OpCodeOperandKind.mm_or_mem:
                case OpCodeOperandKind.mm_reg:
                case OpCodeOperandKind.mm_rm:
                    return Register.MM0 + Random.Below(8);
                case OpCodeOperandKind.sti_opcode:
                    return Register.ST0 + Random.Below(8);
            }

            Register full = Pick64();
            int index = full - Register.RAX;
            switch (kind)
            {
                case OpCodeOperandKind.r8_or_mem:
                case OpCodeOperandKind.r8_reg:
                case OpCodeOperandKind.r8_opcode:
                    if (index < 4 && Random.Chance(0.25))
                    {
                        anyHighByte = true;
                        return Register.AH + index;
                    }

                    return index switch
                    {
                        < 4 => Register.AL + index,
                        _ => Register.SPL + (index - 4),
                    };
                case OpCodeOperandKind.r16_or_mem:
                case OpCodeOperandKind.r16_reg:
                case OpCodeOperandKind.r16_opcode:
                case OpCodeOperandKind.r16_rm:
                    return Register.AX + index;
                case OpCodeOperandKind.r32_or_mem:
                case OpCodeOperandKind.r32_reg:
                case OpCodeOperandKind.r32_opcode:
                case OpCodeOperandKind.r32_rm:
                case OpCodeOperandKind.r32_vvvv:
                    return Register.EAX + index;
                default:
                    return full;
            }
        }

        /// <summary>A memory operand, mostly inside the data window, sometimes at its edges or wild.</summary>
        private void SetMemory(ref Instruction ins, int operand)
        {
            ins.SetOpKind(operand, OpKind.Memory);
            int choice = Random.Below(100);
            Register baseReg = Register.None;
            Register index = Register.None;
            int scale = 1;
            long displacement;
            if (choice < 70)
            {
                baseReg = Pointers[Random.Below(Pointers.Count)];
                displacement = Random.Chance(0.3) ? 0 : Random.Below(0x100) - 0x80;
                if (Random.Chance(0.3))
                {
                    index = Smalls[Random.Below(Smalls.Count)];
                    scale = 1 << Random.Below(4);
                }
            }
            else if (choice < 78)
            {
                baseReg = Register.RIP;
                displacement = (long)(DiffCase.DataBase + 0x100 + (ulong)Random.Below(DiffCase.DataSize - 0x200));
            }
            else if (choice < 84)
            {
                displacement = (long)(DiffCase.DataBase + 0x100 + (ulong)Random.Below(DiffCase.DataSize - 0x200));
            }
            else if (choice < 90)
            {
                baseReg = Pick64();
                displacement = Random.Below(0x100) - 0x80;
            }
            else if (choice < 95)
            {
                // Straddling or beyond the window's end (page-split accesses and faults).
                baseReg = Pointers[Random.Below(Pointers.Count)];
                ulong pointer = GetRegister(baseReg);
                long toEnd = (long)(DiffCase.DataBase + DiffCase.DataSize - pointer);
                displacement = toEnd - Random.Below(24);
            }
            else
            {
                // GS-relative (GS base = the window).
                index = Smalls[Random.Below(Smalls.Count)];
                scale = 1 << Random.Below(4);
                displacement = 0x100 + Random.Below(0x1000);
                ins.SegmentPrefix = Register.GS;
            }

            if (baseReg != Register.RIP && ins.SegmentPrefix == Register.None && Random.Chance(0.05))
            {
                ins.SegmentPrefix = Random.Pick([Register.DS, Register.ES, Register.SS, Register.CS]);
            }

            ins.MemoryBase = baseReg;
            ins.MemoryIndex = index;
            ins.MemoryIndexScale = scale;
            ins.MemoryDisplacement64 = (ulong)displacement;
            ins.MemoryDisplSize = baseReg == Register.RIP ? 8 : displacement == 0 && baseReg != Register.None ? 0 : displacement is >= -128 and <= 127 && baseReg != Register.None ? 1 : 4;
            if (baseReg == Register.None && index == Register.None)
            {
                ins.MemoryDisplSize = 4;
            }
        }

        private byte[]? _rawCode;

        /// <summary>Uses raw bytes as the case's code instead of the generated items.</summary>
        public void SetCode(byte[] code, bool nativeSafe)
        {
            _rawCode = code;
            Case.NativeSafe = nativeSafe;
        }

        /// <summary>Adjusts the displacement so the operand's effective address is aligned (when the base is a known pointer).</summary>
        private void AlignMemory(ref Instruction ins, int alignment)
        {
            if (ins.MemoryBase is Register.RIP or Register.None || ins.MemoryIndex != Register.None || ins.SegmentPrefix == Register.GS)
            {
                return;
            }

            ulong baseValue = GetRegister(ins.MemoryBase);
            long displacement = (long)ins.MemoryDisplacement64;
            ulong ea = baseValue + (ulong)displacement;
            displacement -= (long)(ea & (ulong)(alignment - 1));
            if (alignment >= 64 && ea - DiffCase.DataBase > DiffCase.DataSize - 0x240)
            {
                displacement -= 0x240;
            }

            ins.MemoryDisplacement64 = (ulong)displacement;
            ins.MemoryDisplSize = displacement is >= -128 and <= 127 ? 1 : 4;
        }

        /// <summary>Lays out and encodes the items, resolving branch targets.</summary>
        public void Encode()
        {
            if (_rawCode is not null)
            {
                Case.Code = _rawCode;
                var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(_rawCode), DiffCase.CodeBase);
                var text = new StringBuilder();
                while (decoder.IP < DiffCase.CodeBase + (ulong)_rawCode.Length)
                {
                    text.Append(decoder.Decode().ToString()).Append("; ");
                }

                Case.Listing = text.ToString().TrimEnd(' ', ';');
                return;
            }

            var lengths = new int[_items.Count];
            var writer = new CodeWriterImpl();
            var encoder = Iced.Intel.Encoder.Create(64, writer);
            var kept = new List<(Instruction Ins, int Target)>();
            var map = new int[_items.Count + 1];
            for (int i = 0; i < _items.Count; i++)
            {
                map[i] = kept.Count;
                (Instruction ins, int target) = _items[i];
                if (target >= 0)
                {
                    ins.NearBranch64 = DiffCase.CodeBase + 0x10;
                }

                writer.Clear();
                if (encoder.TryEncode(ins, DiffCase.CodeBase, out _, out _))
                {
                    kept.Add(_items[i]);
                }
            }

            map[_items.Count] = kept.Count;
            for (int i = 0; i < kept.Count; i++)
            {
                if (kept[i].Target >= 0)
                {
                    kept[i] = (kept[i].Ins, map[Math.Min(kept[i].Target, _items.Count)]);
                }
            }

            // Two passes: lengths do not depend on targets (rel8/rel32 are fixed by the Code).
            var ips = new ulong[kept.Count + 1];
            ulong ip = DiffCase.CodeBase;
            for (int i = 0; i < kept.Count; i++)
            {
                ips[i] = ip;
                Instruction ins = kept[i].Ins;
                if (kept[i].Target >= 0)
                {
                    ins.NearBranch64 = ip + 0x10;
                }

                writer.Clear();
                encoder.Encode(ins, ip);
                ip += (ulong)writer.Length;
            }

            ips[kept.Count] = ip;
            var code = new List<byte>();
            var listing = new StringBuilder();
            for (int i = 0; i < kept.Count; i++)
            {
                Instruction ins = kept[i].Ins;
                int target = kept[i].Target;
                if (target >= 0)
                {
                    // Map the builder's item index to the kept list (targets past the end mean the end).
                    ins.NearBranch64 = ips[Math.Min(Math.Max(target, i + 1), kept.Count)];
                }

                writer.Clear();
                if (!encoder.TryEncode(ins, ips[i], out _, out _))
                {
                    // A rel8 branch that cannot reach: aim at the next instruction instead.
                    ins.NearBranch64 = ips[i + 1];
                    writer.Clear();
                    encoder.Encode(ins, ips[i]);
                }

                code.AddRange(writer.Bytes);
                ins.IP = ips[i];
                listing.Append(ins.ToString()).Append("; ");
            }

            Case.Code = code.ToArray();
            Case.Listing = listing.ToString().TrimEnd(' ', ';');
        }
    }

    private sealed class CodeWriterImpl : CodeWriter
    {
        private readonly List<byte> _bytes = new();

        public int Length => _bytes.Count;

        public IEnumerable<byte> Bytes => _bytes;

        public void Clear() => _bytes.Clear();

        public override void WriteByte(byte value) => _bytes.Add(value);
    }
}
