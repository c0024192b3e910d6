using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>
/// Turns a decoded Iced instruction into an <see cref="Op"/>: picks the handler specialized
/// for the instruction's form and size and resolves its operands. Anything not bound here
/// is reported as unimplemented and raises #UD when executed.
/// </summary>
internal unsafe partial struct InstructionBinder
{
    private readonly X86Cpu _cpu;
    private readonly int _bitness;

    /// <summary>The raw bytes of the instruction being bound (x87 records its opcode), or null.</summary>
    public byte* InstructionBytes;

    public InstructionBinder(X86Cpu cpu, int bitness)
    {
        _cpu = cpu;
        _bitness = bitness;
    }

    /// <summary>Fills <paramref name="op"/>; returns true when the instruction ends the block.</summary>
    public bool Bind(in Instruction ins, ref Op op) => Bind(in ins, ref op, out _);

    private bool Bind(in Instruction ins, ref Op op, out bool implemented)
    {
        implemented = true;
        if (ins.Code == Code.INVALID)
        {
            op.Handler = IsTooLong(in ins) ? &MiscHandlers.TooLong : &MiscHandlers.Undefined;
            return true;
        }

        if ((ins.HasRepPrefix || ins.HasRepePrefix) && !ins.HasRepnePrefix)
        {
            op.Flags |= OpFlags.Rep;
        }
        else if (ins.HasRepnePrefix)
        {
            op.Flags |= OpFlags.RepNe;
        }

        if (ins.HasLockPrefix)
        {
            op.Flags |= OpFlags.Lock;
        }

        bool? bound = BindInteger(in ins, ref op);
        bound ??= BindControl(in ins, ref op);
        bound ??= BindBmi(in ins, ref op);
        bound ??= BindSse(in ins, ref op);
        bound ??= BindX87(in ins, ref op);
        bound ??= BindSystem(in ins, ref op);
        if (bound is bool ends)
        {
            if ((op.Flags & OpFlags.Memory) != 0 && IsFlat(in op))
            {
                op.Handler = (delegate*<X86Cpu, ref Op, void>)FlatForms.Of((nint)op.Handler);
            }

            return ends;
        }

        implemented = false;
        op.Handler = &MiscHandlers.Unimplemented;
        return true;
    }

    /// <summary>True when the core has a handler for <paramref name="ins"/> (used by the CPU-model consistency test).</summary>
    public static bool IsImplemented(in Instruction ins, X86Cpu cpu)
    {
        var binder = new InstructionBinder(cpu, ins.CodeSize switch { CodeSize.Code16 => 16, CodeSize.Code32 => 32, _ => 64 });
        Op op = default;
        binder.Bind(in ins, ref op, out bool implemented);
        return implemented;
    }

    /// <summary>
    /// The CPU raises #GP, not #UD, for an instruction longer than 15 bytes. Iced reports those as
    /// invalid with length 15; an instruction of exactly 15 bytes that is invalid for another reason
    /// (LOCK on CMP, say) decodes without Iced's validity checks and is #UD.
    /// </summary>
    private bool IsTooLong(in Instruction ins)
    {
        if (ins.Length < 15)
        {
            return false;
        }

        if (InstructionBytes is null)
        {
            return true;
        }

        byte[] bytes = new ReadOnlySpan<byte>(InstructionBytes, 15).ToArray();
        var decoder = Decoder.Create(_bitness, new ByteArrayCodeReader(bytes), DecoderOptions.NoInvalidCheck);
        return decoder.Decode().IsInvalid;
    }

    // ---- Operand helpers -------------------------------------------------------------------

    /// <summary>Register-file byte offset of a general register (AH..BH are offset 1 into RAX..RBX).</summary>
    internal static ushort Gpr(Register r)
    {
        int v = (int)r;
        if (r >= Register.AL && r <= Register.R15L)
        {
            int i = v - (int)Register.AL;
            return i switch
            {
                < 4 => (ushort)(i * 8),
                < 8 => (ushort)(((i - 4) * 8) + 1),
                _ => (ushort)((i - 4) * 8),
            };
        }

        if (r >= Register.AX && r <= Register.R15W)
        {
            return (ushort)((v - (int)Register.AX) * 8);
        }

        if (r >= Register.EAX && r <= Register.R15D)
        {
            return (ushort)((v - (int)Register.EAX) * 8);
        }

        if (r >= Register.RAX && r <= Register.R15)
        {
            return (ushort)((v - (int)Register.RAX) * 8);
        }

        throw new InvalidOperationException($"{r} is not a general register");
    }

    /// <summary>Register-file slot (0-15) of an address register; Zero/BlockRip for none/RIP.</summary>
    private static byte AddressSlot(Register r)
    {
        if (r == Register.None)
        {
            return RegisterFile.Zero;
        }

        if (r is Register.RIP or Register.EIP)
        {
            return RegisterFile.BlockRip;
        }

        return (byte)(Gpr(r) / 8);
    }

    private static int AddressSize(Register r) =>
        r switch
        {
            >= Register.AX and <= Register.R15W => 2,
            >= Register.EAX and <= Register.R15D or Register.EIP => 4,
            _ => 8,
        };

    internal static int RegisterSize(Register r) => r.GetSize();

    private void BindMemory(in Instruction ins, ref Op op)
    {
        op.Flags |= OpFlags.Memory;
        op.Base = AddressSlot(ins.MemoryBase);
        op.Index = AddressSlot(ins.MemoryIndex);
        op.Scale = (byte)(ins.MemoryIndexScale switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 });
        op.Disp = ins.MemoryDisplacement64;
        if (ins.MemoryBase != Register.None)
        {
            op.AddrSize = (byte)AddressSize(ins.MemoryBase);
        }
        else if (ins.MemoryIndex != Register.None)
        {
            op.AddrSize = (byte)AddressSize(ins.MemoryIndex);
        }
        else
        {
            op.AddrSize = (byte)(ins.MemoryDisplSize is 2 or 4 or 8 ? ins.MemoryDisplSize : _bitness / 8);
        }

        Register segment = ins.MemorySegment;
        if (_bitness == 64 && segment is Register.ES or Register.CS or Register.SS or Register.DS)
        {
            // 64-bit mode ignores these prefixes entirely: the segment (SS for rBP/rSP bases, which
            // decides #SS versus #GP on a non-canonical address) is the default one.
            segment = ins.MemoryBase is Register.RSP or Register.RBP or Register.ESP or Register.EBP ? Register.SS : Register.DS;
        }

        SetSegment(segment, ref op);
    }

    /// <summary>
    /// A memory operand whose linear address is its effective address plus the canonical check
    /// (<see cref="X86Cpu.FlatLinear"/>): 64-bit code (the block runs only in the mode it was decoded
    /// in), 64-bit address size, and ES, CS, SS or DS, whose bases 64-bit mode takes as 0.
    /// </summary>
    internal bool IsFlat(in Op op) => _bitness == 64 && op.AddrSize == 8 && op.Seg <= X86Cpu.SegDs;

    private static void SetSegment(Register segment, ref Op op)
    {
        op.Seg = (byte)(segment - Register.ES);
        if (segment == Register.SS)
        {
            op.Flags |= OpFlags.StackSegment;
        }
    }

    private static int SizeIndex(int bytes) => bytes switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 };

    /// <summary>Operand size of operand 0 (register or memory).</summary>
    private static int Op0Size(in Instruction ins) =>
        ins.Op0Kind == OpKind.Register ? RegisterSize(ins.Op0Register) : ins.MemorySize.GetSize();

    /// <summary>Binds the r/m operand at <paramref name="operand"/> into Rm (register) or the address fields.</summary>
    private void BindRm(in Instruction ins, int operand, ref Op op)
    {
        if (ins.GetOpKind(operand) == OpKind.Register)
        {
            op.Rm = Gpr(ins.GetOpRegister(operand));
        }
        else
        {
            BindMemory(in ins, ref op);
        }
    }

    private static bool IsMemory(in Instruction ins, int operand) => ins.GetOpKind(operand) == OpKind.Memory;

    private static delegate*<X86Cpu, ref Op, void> Sized(int bytes,
        delegate*<X86Cpu, ref Op, void> h8, delegate*<X86Cpu, ref Op, void> h16,
        delegate*<X86Cpu, ref Op, void> h32, delegate*<X86Cpu, ref Op, void> h64) => bytes switch
        {
            1 => h8,
            2 => h16,
            4 => h32,
            _ => h64,
        };
}
