using System.Buffers.Binary;

namespace SharpVisor.Emulator;

/// <summary>
/// x87 instructions. Imm holds FOP (the 11-bit opcode recorded on unmasked exceptions); Reg is
/// the ST(i) index of register forms; Aux selects the operand format or sub-operation.
/// </summary>
internal static class X87Handlers
{
    public const int F32 = 0;
    public const int F64 = 1;
    public const int F80 = 2;
    public const int I16 = 3;
    public const int I32 = 4;
    public const int I64 = 5;
    public const int Bcd = 6;

    public static int FormatSize(int format) => format switch
    {
        F32 or I32 => 4,
        F64 or I64 => 8,
        I16 => 2,
        _ => 10,
    };

    private static FloatEnvironment Env(X86Cpu cpu) => FloatEnvironment.FromFcw(cpu._fcw);

    /// <summary>Reads a memory operand as an unpacked value (NaNs kept signalling).</summary>
    private static FloatValue ReadOperand(X86Cpu cpu, ref Op op, int format)
    {
        ulong linear = cpu.Linear(ref op, FormatSize(format), MemoryAccess.Read);
        return format switch
        {
            F32 => SoftFloat.Unpack32(cpu.Read32(linear), false),
            F64 => SoftFloat.Unpack64(cpu.Read64(linear), false),
            F80 => SoftFloat.Unpack80(ReadFloat80(cpu, linear)),
            I16 => X87Arithmetic.FromInteger((short)cpu.Read16(linear)),
            I32 => X87Arithmetic.FromInteger((int)cpu.Read32(linear)),
            I64 => X87Arithmetic.FromInteger((long)cpu.Read64(linear)),
            _ => ReadBcd(cpu, linear),
        };
    }

    private static Float80 ReadFloat80(X86Cpu cpu, ulong linear)
    {
        Span<byte> b = stackalloc byte[10];
        cpu.ReadBytes(linear, b);
        return new Float80(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt16LittleEndian(b[8..]));
    }

    private static void WriteFloat80(X86Cpu cpu, ulong linear, Float80 v)
    {
        Span<byte> b = stackalloc byte[10];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v.Significand);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], v.SignExponent);
        cpu.WriteBytes(linear, b);
    }

    private static FloatValue ReadBcd(X86Cpu cpu, ulong linear)
    {
        Span<byte> b = stackalloc byte[10];
        cpu.ReadBytes(linear, b);
        long value = 0;
        for (int i = 8; i >= 0; i--)
        {
            value = (value * 100) + ((b[i] >> 4) * 10) + (b[i] & 15);
        }

        FloatValue v = X87Arithmetic.FromInteger(value);
        v.Sign = (b[9] & 0x80) != 0;
        return v;
    }

    // ---- Loads ----------------------------------------------------------------------------

    private static bool CheckPushOverflow(X86Cpu cpu, ref Op op, ulong? dataPointer = null)
    {
        if (!cpu.StEmpty(7))
        {
            if (cpu.X87StackFault(overflow: true, ref op, dataPointer))
            {
                cpu.FpuPush(X87Arithmetic.Indefinite);
            }

            return false;
        }

        return true;
    }

    /// <summary>FLD/FILD/FBLD from memory (Aux = format).</summary>
    public static void LoadMemory(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        int format = op.Aux;
        FloatValue v = ReadOperand(cpu, ref op, format);
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        if (!CheckPushOverflow(cpu, ref op, cpu.EffectiveAddress(ref op)))
        {
            return;
        }

        if (format == F80)
        {
            ulong linear = cpu.Linear(ref op, 10, MemoryAccess.Read);
            cpu.FpuPush(ReadFloat80(cpu, linear));
            return;
        }

        FloatEnvironment env = Env(cpu);
        Float80 value = format is F32 or F64 ? X87Arithmetic.Load(v, ref env) : SoftFloat.ToFloat80(SoftFloat.Round(FloatFormat.Extended, v, ref env));

        // An unmasked denormal operand still loads (the value converts exactly); an unmasked invalid does not.
        if (cpu.X87Commit(ref env, ref op, cpu.EffectiveAddress(ref op)) || (env.Flags & ~(uint)cpu._fcw & FloatFlags.Invalid) == 0)
        {
            cpu.FpuPush(value);
        }
    }

    /// <summary>FLD ST(i).</summary>
    public static void LoadRegister(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        bool empty = cpu.StEmpty(op.Reg);
        Float80 value = cpu.St(op.Reg);
        if (empty)
        {
            // An empty source is an underflow, even when the push would also overflow.
            if (cpu.X87StackFault(overflow: false, ref op))
            {
                cpu.FpuPush(X87Arithmetic.Indefinite);
            }

            return;
        }

        if (!CheckPushOverflow(cpu, ref op))
        {
            return;
        }

        cpu.FpuPush(value);
    }

    // Constants as 64-bit significands with the rounding of their infinite expansion: +1 = round up in nearest.
    private static readonly (ulong Significand, ushort Exponent, int Nearest)[] s_constants =
    [
        (0x8000_0000_0000_0000, 0x3FFF, 0), // 1
        (0xD49A_784B_CD1B_8AFE, 0x4000, 0), // log2(10)
        (0xB8AA_3B29_5C17_F0BB, 0x3FFF, 1), // log2(e)
        (0xC90F_DAA2_2168_C234, 0x4000, 1), // pi
        (0x9A20_9A84_FBCF_F798, 0x3FFD, 1), // log10(2)
        (0xB172_17F7_D1CF_79AB, 0x3FFE, 1), // ln(2)
        (0, 0, 0), // +0
    ];

    /// <summary>FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (Aux = 0..6), rounded per RC.</summary>
    public static void LoadConstant(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        if (!CheckPushOverflow(cpu, ref op))
        {
            return;
        }

        (ulong significand, ushort exponent, int nearest) = s_constants[op.Aux];
        int rc = (cpu._fcw >> 10) & 3;

        // These constants are all positive and never exact: up rounds up, down/zero truncate.
        if ((rc == RoundingMode.Nearest && nearest == 1) || (rc == RoundingMode.Up && op.Aux is > 0 and < 6))
        {
            significand++;
        }

        cpu.FpuPush(new Float80(significand, exponent));
    }

    // ---- Stores ---------------------------------------------------------------------------

    /// <summary>FST/FSTP/FIST/FISTP/FISTTP/FBSTP to memory (Aux: format | 0x10 pop | 0x20 truncate).</summary>
    public static void StoreMemory(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        int format = op.Aux & 0xF;
        bool pop = (op.Aux & 0x10) != 0;
        ulong dataPointer = cpu.EffectiveAddress(ref op);

        // The value and its exceptions come first: an unmasked exception that prevents the store is
        // reported without the destination ever being addressed (so it cannot fault).
        FloatEnvironment env = Env(cpu);
        bool empty = cpu.StEmpty(0);
        Float80 st0 = empty ? X87Arithmetic.Indefinite : cpu.St(0);
        ulong bits = 0;
        UInt128 bcd = 0;
        switch (format)
        {
            case F32:
                bits = (uint)X87Arithmetic.Store(st0, FloatFormat.Single, ref env);
                break;
            case F64:
                bits = (ulong)X87Arithmetic.Store(st0, FloatFormat.Double, ref env);
                break;
            case F80:
                break;
            case Bcd:
                bcd = ToBcd(st0, ref env);
                break;
            default:
            {
                int width = format == I16 ? 16 : format == I32 ? 32 : 64;
                int mode = (op.Aux & 0x20) != 0 ? RoundingMode.TowardZero : env.Rounding;
                FloatValue v = SoftFloat.Unpack80(st0);
                long integer = SoftFloat.ToInt(v, width, mode, ref env);
                env.RoundedUp = (env.Flags & FloatFlags.Inexact) != 0 && RoundedAway(v, integer);
                bits = (ulong)integer;
                break;
            }
        }

        uint unmasked = ~(uint)cpu._fcw & FloatFlags.All;
        bool blocked = empty
            ? (unmasked & FloatFlags.Invalid) != 0
            : format != F80
                && ((env.Flags & unmasked & (FloatFlags.Invalid | FloatFlags.Denormal | FloatFlags.DivideByZero)) != 0
                    || (format is F32 or F64 && (env.Flags & unmasked & (FloatFlags.Overflow | FloatFlags.Underflow)) != 0));
        if (blocked)
        {
            if (cpu._amd)
            {
                // AMD addresses the destination first: it faults even when the value cannot be stored.
                cpu.ProbeWrite(cpu.Linear(ref op, FormatSize(format), MemoryAccess.Write), FormatSize(format));
            }

            cpu.X87Record(ref op);
            cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
            if (empty)
            {
                cpu.X87StackFault(overflow: false, ref op, dataPointer);
            }
            else
            {
                // An unmasked overflow/underflow cannot be stored to memory: nothing is written or popped.
                env.Flags &= ~FloatFlags.Inexact;
                cpu.X87Commit(ref env, ref op, dataPointer);
                cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
            }

            return;
        }

        ulong linear = cpu.Linear(ref op, FormatSize(format), MemoryAccess.Write);
        cpu.ProbeWrite(linear, FormatSize(format));
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        if (empty)
        {
            cpu.X87StackFault(overflow: false, ref op, dataPointer);
        }
        else if (format != F80)
        {
            cpu.X87Commit(ref env, ref op, dataPointer);
        }

        switch (format)
        {
            case F32: cpu.Write32(linear, (uint)bits); break;
            case F64:
            case I64: cpu.Write64(linear, bits); break;
            case I32: cpu.Write32(linear, (uint)bits); break;
            case I16: cpu.Write16(linear, (ushort)bits); break;
            case Bcd:
            {
                Span<byte> b = stackalloc byte[16];
                BinaryPrimitives.WriteUInt128LittleEndian(b, bcd);
                cpu.WriteBytes(linear, b[..10]);
                break;
            }
            default: WriteFloat80(cpu, linear, st0); break;
        }

        if (pop)
        {
            cpu.FpuPop();
        }
    }

    private static bool RoundedAway(in FloatValue v, long integer)
    {
        // The integer's magnitude exceeds the value's: compare |integer| with the truncated magnitude.
        if (v.Class != FloatClass.Finite)
        {
            return false;
        }

        ulong magnitude = integer < 0 ? (ulong)(-integer) : (ulong)integer;
        ulong truncated = v.Exponent < 0 ? 0 : v.Exponent >= 63 ? ulong.MaxValue : v.Significand >> (63 - v.Exponent);
        return magnitude > truncated;
    }

    /// <summary>FBSTP: ST(0) rounded to an 18-digit packed BCD integer (the BCD indefinite and #I when out of range).</summary>
    private static UInt128 ToBcd(Float80 st0, ref FloatEnvironment env)
    {
        FloatValue v = SoftFloat.Unpack80(st0);
        var local = env with { Flags = 0 };
        long integer = SoftFloat.ToInt(v, 64, env.Rounding, ref local);
        ulong magnitude = integer < 0 ? (ulong)(-integer) : (ulong)integer;
        if ((local.Flags & FloatFlags.Invalid) != 0 || magnitude > 999_999_999_999_999_999UL)
        {
            env.Flags |= FloatFlags.Invalid;
            return (UInt128)0xFFFF_C000UL << 48;
        }

        UInt128 r = 0;
        for (int i = 0; i < 18; i++)
        {
            r |= (UInt128)(magnitude % 10) << (4 * i);
            magnitude /= 10;
        }

        if (v.Sign)
        {
            r |= (UInt128)0x80 << 72;
        }

        env.Flags |= local.Flags;
        env.RoundedUp = (local.Flags & FloatFlags.Inexact) != 0 && RoundedAway(v, integer);
        return r;
    }

    /// <summary>FSTP1 (D9 D8+i, "FSTPNCE"): copies ST(0) and its tag to ST(i) and pops, without stack checks.</summary>
    public static void StoreRegisterNoChecks(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        bool valid = !cpu.StEmpty(0);
        cpu.St(op.Reg) = cpu.St(0);
        cpu.SetStValid(op.Reg, valid);
        cpu.FpuPop();
    }

    /// <summary>FST/FSTP ST(i) (Aux bit 4: pop).</summary>
    public static void StoreRegister(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        Float80 value = cpu.St(0);
        if (cpu.StEmpty(0))
        {
            if (!cpu.X87StackFault(overflow: false, ref op))
            {
                return;
            }

            value = X87Arithmetic.Indefinite;
        }

        cpu.St(op.Reg) = value;
        cpu.SetStValid(op.Reg, true);
        if ((op.Aux & 0x10) != 0)
        {
            cpu.FpuPop();
        }
    }

    // ---- Arithmetic -------------------------------------------------------------------------

    /// <summary>ST(0) = ST(0) op memory (Aux: operation | format &lt;&lt; 4).</summary>
    public static void ArithmeticMemory(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        FloatValue source = ReadOperand(cpu, ref op, op.Aux >> 4);
        cpu.X87Record(ref op);
        if (cpu.StEmpty(0))
        {
            if (cpu.X87StackFault(overflow: false, ref op, cpu.EffectiveAddress(ref op)))
            {
                cpu.St(0) = X87Arithmetic.Indefinite;
                cpu.SetStValid(0, true);
            }

            return;
        }

        FloatEnvironment env = Env(cpu);
        Float80 r = X87Arithmetic.Binary(op.Aux & 7, SoftFloat.Unpack80(cpu.St(0)), source, cpu._fcw, ref env);
        if (cpu.X87Commit(ref env, ref op, cpu.EffectiveAddress(ref op)))
        {
            cpu.St(0) = r;
        }
    }

    /// <summary>
    /// Register forms (Aux: operation | 0x8 destination is ST(i) | 0x10 pop). The destination is the
    /// first operand: ST(0) op ST(i), or ST(i) op ST(0).
    /// </summary>
    public static void ArithmeticRegister(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        int i = op.Reg;
        bool toSti = (op.Aux & 8) != 0;
        int destination = toSti ? i : 0;
        int source = toSti ? 0 : i;
        if (cpu.StEmpty(0) || cpu.StEmpty(i))
        {
            if (cpu.X87StackFault(overflow: false, ref op))
            {
                cpu.St(destination) = X87Arithmetic.Indefinite;
                cpu.SetStValid(destination, true);
                if ((op.Aux & 0x10) != 0)
                {
                    cpu.FpuPop();
                }
            }

            return;
        }

        FloatEnvironment env = Env(cpu);
        Float80 r = X87Arithmetic.Binary(op.Aux & 7, cpu.St(destination), cpu.St(source), cpu._fcw, ref env);
        if (cpu.X87Commit(ref env, ref op))
        {
            cpu.St(destination) = r;
            if ((op.Aux & 0x10) != 0)
            {
                cpu.FpuPop();
            }
        }
    }

    // ---- Compares ----------------------------------------------------------------------------

    /// <summary>
    /// FCOM family. Aux: bits 0-3 source (0-6 memory format, 7 ST(i), 8 zero for FTST), bit 4 quiet
    /// (FUCOM), bits 5-6 pops, bit 7 result to EFLAGS (FCOMI).
    /// </summary>
    public static void Compare(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        int source = op.Aux & 0xF;
        FloatValue y = source switch
        {
            7 => SoftFloat.Unpack80(cpu.St(op.Reg)),
            8 => FloatValue.Zero(false),
            _ => ReadOperand(cpu, ref op, source),
        };
        cpu.X87Record(ref op);
        int pops = (op.Aux >> 5) & 3;
        bool toEflags = (op.Aux & 0x80) != 0;
        int order;
        FloatEnvironment env = Env(cpu);
        if (cpu.StEmpty(0) || (source == 7 && cpu.StEmpty(op.Reg)))
        {
            if (!cpu.X87StackFault(overflow: false, ref op, source <= 6 ? cpu.EffectiveAddress(ref op) : null))
            {
                // Unmasked: "unordered" is still reported, nothing is popped.
                pops = 0;
            }

            order = -2;
        }
        else
        {
            order = X87Arithmetic.Compare(SoftFloat.Unpack80(cpu.St(0)), y, (op.Aux & 0x10) != 0, ref env);
            ushort c1 = (ushort)(cpu._fsw & X86Cpu.FswC1);
            bool committed = cpu.X87Commit(ref env, ref op, source <= 6 ? cpu.EffectiveAddress(ref op) : null);

            // FCOM clears C1; FCOMI leaves it.
            cpu._fsw = (ushort)((cpu._fsw & ~X86Cpu.FswC1) | (toEflags ? c1 : 0));
            if (!committed)
            {
                // An unmasked invalid compare still reports "unordered" but does not pop.
                pops = 0;
            }
        }

        if (toEflags)
        {
            cpu.SetStatusFlags(order switch
            {
                -2 => RflagsBits.Zero | RflagsBits.Parity | RflagsBits.Carry,
                -1 => RflagsBits.Carry,
                0 => RflagsBits.Zero,
                _ => 0,
            });
        }
        else
        {
            ushort codes = order switch
            {
                -2 => X86Cpu.FswC3 | X86Cpu.FswC2 | X86Cpu.FswC0,
                -1 => X86Cpu.FswC0,
                0 => X86Cpu.FswC3,
                _ => 0,
            };
            cpu._fsw = (ushort)((cpu._fsw & ~(X86Cpu.FswC0 | X86Cpu.FswC2 | X86Cpu.FswC3)) | codes);
        }

        for (int p = 0; p < pops; p++)
        {
            cpu.FpuPop();
        }
    }

    // ---- Register moves and control -----------------------------------------------------------

    public static void Fxch(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        int i = op.Reg;
        if (cpu.StEmpty(0) || cpu.StEmpty(i))
        {
            if (!cpu.X87StackFault(overflow: false, ref op))
            {
                return;
            }

            if (cpu.StEmpty(0))
            {
                cpu.St(0) = X87Arithmetic.Indefinite;
                cpu.SetStValid(0, true);
            }

            if (cpu.StEmpty(i))
            {
                cpu.St(i) = X87Arithmetic.Indefinite;
                cpu.SetStValid(i, true);
            }
        }

        (cpu.St(0), cpu.St(i)) = (cpu.St(i), cpu.St(0));
    }

    /// <summary>FCMOVcc ST(0), ST(i) (Aux = x86 condition code).</summary>
    public static void Fcmov(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        if (cpu.StEmpty(0) || cpu.StEmpty(op.Reg))
        {
            if (cpu.X87StackFault(overflow: false, ref op))
            {
                cpu.St(0) = X87Arithmetic.Indefinite;
                cpu.SetStValid(0, true);
            }

            return;
        }

        if (cpu.Condition(op.Aux))
        {
            cpu.St(0) = cpu.St(op.Reg);
        }
    }

    public static void Ffree(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        cpu.SetStValid(op.Reg, false);
        if (op.Aux == 1)
        {
            cpu.FpuPop();
        }
    }

    /// <summary>FINCSTP (Aux 1) / FDECSTP (Aux −1 as 0xFFFF).</summary>
    public static void StackPointer(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
        cpu._fsw &= unchecked((ushort)~X86Cpu.FswC1);
        cpu._fpuTop = (cpu._fpuTop + (op.Aux == 1 ? 1 : 7)) & 7;
    }

    /// <summary>FNENI/FNDISI/FNSETPM: 8087/80287 controls that do nothing on later FPUs (not even update FIP).</summary>
    public static void ObsoleteControl(X86Cpu cpu, ref Op op) => cpu.X87Begin(waiting: false);

    public static void Fnop(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        cpu.X87Record(ref op);
    }

    /// <summary>WAIT/FWAIT: delivers a pending unmasked exception (#NM only when CR0.MP and CR0.TS).</summary>
    public static void Fwait(X86Cpu cpu, ref Op op)
    {
        if ((cpu._cr0 & (X86Cpu.Cr0Monitor | X86Cpu.Cr0TaskSwitched)) == (X86Cpu.Cr0Monitor | X86Cpu.Cr0TaskSwitched))
        {
            throw new CpuException(ExceptionVector.DeviceNotAvailable);
        }

        if ((cpu._fsw & X86Cpu.FswErrorSummary) != 0)
        {
            throw new CpuException(ExceptionVector.FloatingPoint);
        }
    }

    public static void Fninit(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin(waiting: false);
        cpu._fcw = 0x37F;
        cpu._fsw = 0;
        cpu._fpuTop = 0;
        cpu._fpuValid = 0;
        cpu._fip = cpu._fdp = 0;
        cpu._fop = 0;
        cpu._fcs = cpu._fds = 0;
    }

    public static void Fnclex(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin(waiting: false);
        cpu._fsw &= unchecked((ushort)~(0x3F | X86Cpu.FswStackFault | X86Cpu.FswErrorSummary | X86Cpu.FswBusy));
    }

    public static void Fldcw(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        ushort value = cpu.Read16(cpu.Linear(ref op, 2, MemoryAccess.Read));
        cpu._fcw = ControlWord(value);
        cpu.UpdateErrorSummary();
    }

    /// <summary>FCW as loaded: reserved bits 7 and 13-15 read as zero, bit 6 as one.</summary>
    private static ushort ControlWord(ushort value) => (ushort)((value & 0x1F3F) | 0x40);

    public static void Fnstcw(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin(waiting: false);
        cpu.Write16(cpu.Linear(ref op, 2, MemoryAccess.Write), cpu._fcw);
    }

    /// <summary>FNSTSW m16 or AX (Aux = 1).</summary>
    public static void Fnstsw(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin(waiting: false);
        if (op.Aux == 1)
        {
            Size16.WriteReg(cpu, 0, cpu.FpuStatusWord);
        }
        else
        {
            cpu.Write16(cpu.Linear(ref op, 2, MemoryAccess.Write), cpu.FpuStatusWord);
        }
    }

    /// <summary>
    /// The faults of an FNSTENV/FNSAVE/FLDENV/FRSTOR image access, in hardware's order: the first
    /// byte, then the last byte (a #PF there reports that byte's address; an image that runs past
    /// the canonical boundary is #GP only once the first byte was accessible).
    /// </summary>
    private static void ProbeImage(X86Cpu cpu, ulong linear, int size, MemoryAccess access)
    {
        ulong last = linear + (ulong)size - 1;
        if (access == MemoryAccess.Write)
        {
            cpu.ProbeWrite(linear, 1);
        }
        else
        {
            cpu.ProbeRead(linear, 1);
        }

        if (cpu._is64 && !X86Cpu.IsCanonical(last))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        last = cpu._is64 ? last : (uint)last;
        if (access == MemoryAccess.Write)
        {
            cpu.ProbeWrite(last, 1);
        }
        else
        {
            cpu.ProbeRead(last, 1);
        }
    }

    /// <summary>FNSTENV/FNSAVE (Aux: bit 0 save registers, bit 1 16-bit format).</summary>
    public static void Fnstenv(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin(waiting: false);
        bool small = (op.Aux & 2) != 0;
        bool registers = (op.Aux & 1) != 0;
        int envSize = small ? 14 : 28;
        int size = envSize + (registers ? 80 : 0);
        ulong linear = cpu.Linear(ref op, size, MemoryAccess.Write);
        ProbeImage(cpu, linear, size, MemoryAccess.Write);
        Span<byte> image = stackalloc byte[108];
        image.Clear();
        if (small)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(image, cpu._fcw);
            BinaryPrimitives.WriteUInt16LittleEndian(image[2..], cpu.FpuStatusWord);
            BinaryPrimitives.WriteUInt16LittleEndian(image[4..], cpu.FullTagWord());
            // Protected-mode 16-bit layout: IP offset, CS selector, data offset, DS selector (no FOP).
            // FCS/FDS are zero on Intel (deprecated) and what the AMD profile recorded.
            BinaryPrimitives.WriteUInt16LittleEndian(image[6..], (ushort)cpu._fip);
            BinaryPrimitives.WriteUInt16LittleEndian(image[8..], cpu._fcs);
            BinaryPrimitives.WriteUInt16LittleEndian(image[10..], (ushort)cpu._fdp);
            BinaryPrimitives.WriteUInt16LittleEndian(image[12..], cpu._fds);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image, 0xFFFF_0000u | cpu._fcw);
            BinaryPrimitives.WriteUInt32LittleEndian(image[4..], 0xFFFF_0000u | cpu.FpuStatusWord);
            BinaryPrimitives.WriteUInt32LittleEndian(image[8..], 0xFFFF_0000u | cpu.FullTagWord());
            BinaryPrimitives.WriteUInt32LittleEndian(image[12..], (uint)cpu._fip);
            BinaryPrimitives.WriteUInt32LittleEndian(image[16..], ((uint)cpu._fop << 16) | cpu._fcs);
            BinaryPrimitives.WriteUInt32LittleEndian(image[20..], (uint)cpu._fdp);
            BinaryPrimitives.WriteUInt32LittleEndian(image[24..], 0xFFFF_0000u | cpu._fds);
        }

        if (registers)
        {
            for (int i = 0; i < 8; i++)
            {
                Float80 v = cpu.St(i);
                BinaryPrimitives.WriteUInt64LittleEndian(image[(envSize + (10 * i))..], v.Significand);
                BinaryPrimitives.WriteUInt16LittleEndian(image[(envSize + (10 * i) + 8)..], v.SignExponent);
            }
        }

        cpu.WriteBytes(linear, image[..size]);
        if (registers)
        {
            Fninit(cpu, ref op);
        }
        else
        {
            cpu._fcw |= 0x3F;
            cpu.UpdateErrorSummary();
        }
    }

    /// <summary>FLDENV/FRSTOR (Aux as for FNSTENV).</summary>
    public static void Fldenv(X86Cpu cpu, ref Op op)
    {
        cpu.X87Begin();
        bool small = (op.Aux & 2) != 0;
        bool registers = (op.Aux & 1) != 0;
        int envSize = small ? 14 : 28;
        int size = envSize + (registers ? 80 : 0);
        Span<byte> image = stackalloc byte[108];
        ulong linear = cpu.Linear(ref op, size, MemoryAccess.Read);
        ProbeImage(cpu, linear, size, MemoryAccess.Read);
        cpu.ReadBytes(linear, image[..size]);
        int step = small ? 2 : 4;
        cpu._fcw = ControlWord(BinaryPrimitives.ReadUInt16LittleEndian(image));
        ushort fsw = BinaryPrimitives.ReadUInt16LittleEndian(image[step..]);
        cpu._fpuTop = (fsw >> 11) & 7;
        cpu._fsw = (ushort)(fsw & ~0x3800);
        ushort tags = BinaryPrimitives.ReadUInt16LittleEndian(image[(2 * step)..]);
        if (small)
        {
            cpu._fip = BinaryPrimitives.ReadUInt16LittleEndian(image[6..]);
            cpu._fop = 0;
            cpu._fdp = BinaryPrimitives.ReadUInt16LittleEndian(image[10..]);
            cpu._fcs = cpu._amd ? BinaryPrimitives.ReadUInt16LittleEndian(image[8..]) : (ushort)0;
            cpu._fds = cpu._amd ? BinaryPrimitives.ReadUInt16LittleEndian(image[12..]) : (ushort)0;
        }
        else
        {
            cpu._fip = BinaryPrimitives.ReadUInt32LittleEndian(image[12..]);
            cpu._fop = (ushort)((BinaryPrimitives.ReadUInt32LittleEndian(image[16..]) >> 16) & 0x7FF);
            cpu._fdp = BinaryPrimitives.ReadUInt32LittleEndian(image[20..]);
            cpu._fcs = cpu._amd ? BinaryPrimitives.ReadUInt16LittleEndian(image[16..]) : (ushort)0;
            cpu._fds = cpu._amd ? BinaryPrimitives.ReadUInt16LittleEndian(image[24..]) : (ushort)0;
        }

        byte valid = 0;
        for (int i = 0; i < 8; i++)
        {
            if (((tags >> (2 * i)) & 3) != 3)
            {
                valid |= (byte)(1 << i);
            }
        }

        cpu._fpuValid = valid;
        if (registers)
        {
            for (int i = 0; i < 8; i++)
            {
                cpu.St(i) = new Float80(
                    BinaryPrimitives.ReadUInt64LittleEndian(image[(envSize + (10 * i))..]),
                    BinaryPrimitives.ReadUInt16LittleEndian(image[(envSize + (10 * i) + 8)..]));
            }
        }

        cpu.UpdateErrorSummary();
    }
}
