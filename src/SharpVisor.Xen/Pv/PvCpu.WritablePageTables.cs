using System.Numerics;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// Writable page tables (VMASST_TYPE_writable_pagetables, Xen's "ptwr"): page tables are mapped
/// read-only, so a guest kernel that writes straight into one of its L1 tables (Linux's
/// ptep_get_and_clear is an XCHG, ptep_set_wrprotect a LOCK AND) faults; the instruction is decoded
/// here and applied as a validated L1 entry update, as Xen emulates it. The forms kernels use on
/// entries: MOV from a register or an immediate, XCHG, LOCK CMPXCHG, AND/OR with a register or an
/// immediate, BTS/BTR. Anything else, a failed validation, or a table that is not an L1 in use
/// gives the guest its page fault.
/// </summary>
public sealed partial class PvCpu
{
    private const uint PageFaultPresent = 1;
    private const uint PageFaultWrite = 2;
    private const uint PageFaultReservedBit = 8;

    private const ulong FlagsCarry = 1UL << 0;
    private const ulong FlagsParity = 1UL << 2;
    private const ulong FlagsAdjust = 1UL << 4;
    private const ulong FlagsZero = 1UL << 6;
    private const ulong FlagsSign = 1UL << 7;
    private const ulong FlagsOverflow = 1UL << 11;
    private const ulong ArithmeticFlags = FlagsCarry | FlagsParity | FlagsAdjust | FlagsZero | FlagsSign | FlagsOverflow;

    /// <summary>
    /// Writable page tables are in force: from the start, as Xen gives every 64-bit PV domain them
    /// (Linux's XEN_ELFNOTE_FEATURES says "!writable_page_tables": required, and never asks);
    /// vm_assist can switch them off and on.
    /// </summary>
    private volatile bool _writablePageTables = true;

    private enum EntryWriteKind
    {
        Move,
        Exchange,
        CompareExchange,
        And,
        Or,
        BitTestAndSet,
        BitTestAndReset,
    }

    /// <summary>A write into a page-table entry: what it does, its width, its source operand, its length, the register it names.</summary>
    private readonly record struct EntryWrite(EntryWriteKind Kind, int Size, ulong Source, int Length, int Register);

    /// <summary>The #PF of a guest kernel write into one of its L1 tables, emulated; false leaves the fault to the guest.</summary>
    private bool TryEmulatePageTableWrite(IParavirtualCpuContext cpu, PvVcpuState vcpu, uint errorCode)
    {
        if (!_writablePageTables || !vcpu.KernelMode
            || (errorCode & (PageFaultPresent | PageFaultWrite | PageFaultReservedBit)) != (PageFaultPresent | PageFaultWrite)
            || !TryDecodeEntryWrite(cpu, out EntryWrite write))
        {
            return false;
        }

        int bits = write.Size * 8;
        ulong mask = write.Size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
        ulong source = write.Source & mask;
        ulong accumulator = cpu.GetRegister(0) & mask;
        ulong bit = 1UL << (int)(write.Source & (ulong)(bits - 1));
        Func<ulong, ulong?> merge = write.Kind switch
        {
            EntryWriteKind.CompareExchange => old => old == accumulator ? source : null,
            EntryWriteKind.And => old => old & source,
            EntryWriteKind.Or => old => old | source,
            EntryWriteKind.BitTestAndSet => old => old | bit,
            EntryWriteKind.BitTestAndReset => old => old & ~bit,
            _ => _ => source,
        };
        if (!_tables.TryWriteL1Entry(_domain.PvPaging(vcpu.Id), cpu.Cr2, write.Size, merge, out ulong old, out int rc) || rc != 0)
        {
            return false;
        }

        ulong flags = cpu.Rflags;
        switch (write.Kind)
        {
            case EntryWriteKind.Exchange:
                cpu.SetRegister(write.Register, old);
                break;
            case EntryWriteKind.CompareExchange:
                ulong difference = (accumulator - old) & mask;
                flags = ResultFlags(flags, difference, bits)
                    | (accumulator < old ? FlagsCarry : 0)
                    | (((accumulator ^ old ^ difference) & 0x10) != 0 ? FlagsAdjust : 0)
                    | ((((accumulator ^ old) & (accumulator ^ difference)) >> (bits - 1) & 1) != 0 ? FlagsOverflow : 0);
                if (old != accumulator)
                {
                    cpu.SetRegister(0, old);
                }

                break;
            case EntryWriteKind.And:
                flags = ResultFlags(flags, old & source, bits);
                break;
            case EntryWriteKind.Or:
                flags = ResultFlags(flags, old | source, bits);
                break;
            case EntryWriteKind.BitTestAndSet or EntryWriteKind.BitTestAndReset:
                flags = (flags & ~FlagsCarry) | ((old & bit) != 0 ? FlagsCarry : 0);
                break;
        }

        cpu.Rflags = flags;
        cpu.Rip += (ulong)write.Length;
        return true;
    }

    /// <summary>RFLAGS after a logical result: ZF, SF and PF from it, CF, OF and AF clear.</summary>
    private static ulong ResultFlags(ulong flags, ulong result, int bits) =>
        (flags & ~ArithmeticFlags)
        | (result == 0 ? FlagsZero : 0)
        | (((result >> (bits - 1)) & 1) != 0 ? FlagsSign : 0)
        | ((BitOperations.PopCount(result & 0xFF) & 1) == 0 ? FlagsParity : 0);

    /// <summary>Decodes at RIP one of the entry writes <see cref="TryEmulatePageTableWrite"/> handles.</summary>
    private static bool TryDecodeEntryWrite(IParavirtualCpuContext cpu, out EntryWrite write)
    {
        write = default;
        Span<byte> code = stackalloc byte[15];
        int available = 15;
        while (available > 0 && !cpu.TryReadVirtual(cpu.Rip, code[..available]))
        {
            available--;
        }

        code = code[..available];
        int i = 0;
        while (i < code.Length && code[i] is 0xF0 or 0x2E or 0x3E or 0x26 or 0x36 or 0x64 or 0x65)
        {
            i++;                                 // LOCK (or DS, as UP alternatives write it) and segment overrides
        }

        int rex = i < code.Length && (code[i] & 0xF0) == 0x40 ? code[i++] : 0;
        int size = (rex & 8) != 0 ? 8 : 4;
        if (i + 1 >= code.Length)
        {
            return false;
        }

        byte opcode = code[i++];
        bool twoByte = opcode == 0x0F;
        if (twoByte)
        {
            opcode = code[i++];
        }

        int operand = MemoryOperandLength(code[i..]);
        if (operand < 0)
        {
            return false;
        }

        int reg = ((code[i] >> 3) & 7) | ((rex & 4) << 1);
        int extension = (code[i] >> 3) & 7;
        int end = i + operand;
        (EntryWriteKind Kind, int ImmediateBytes, int Size)? form = (twoByte, opcode) switch
        {
            (false, 0x89) => (EntryWriteKind.Move, 0, size),
            (false, 0x87) => (EntryWriteKind.Exchange, 0, size),
            (false, 0x21) => (EntryWriteKind.And, 0, size),
            (false, 0x09) => (EntryWriteKind.Or, 0, size),
            (false, 0xC7) when extension == 0 => (EntryWriteKind.Move, 4, size),
            (false, 0x80) when extension is 1 or 4 => (extension == 4 ? EntryWriteKind.And : EntryWriteKind.Or, 1, 1),
            (false, 0x81) when extension is 1 or 4 => (extension == 4 ? EntryWriteKind.And : EntryWriteKind.Or, 4, size),
            (false, 0x83) when extension is 1 or 4 => (extension == 4 ? EntryWriteKind.And : EntryWriteKind.Or, 1, size),
            (true, 0xB1) => (EntryWriteKind.CompareExchange, 0, size),
            (true, 0xAB) => (EntryWriteKind.BitTestAndSet, 0, size),
            (true, 0xB3) => (EntryWriteKind.BitTestAndReset, 0, size),
            (true, 0xBA) when extension is 5 or 6 => (extension == 5 ? EntryWriteKind.BitTestAndSet : EntryWriteKind.BitTestAndReset, 1, size),
            _ => null,
        };
        if (form is not { } f || end + f.ImmediateBytes > code.Length)
        {
            return false;
        }

        // Immediates are sign-extended (AND with 0xFD clears one bit of a byte, with -3 of a quadword).
        ulong source = f.ImmediateBytes switch
        {
            1 => (ulong)(long)(sbyte)code[end],
            4 => (ulong)(long)BitConverter.ToInt32(code[end..]),
            _ => cpu.GetRegister(reg),
        };
        write = new EntryWrite(f.Kind, f.Size, source, end + f.ImmediateBytes, reg);
        return true;
    }

    /// <summary>The bytes of a ModRM memory operand (ModRM, SIB, displacement), or -1 for a register operand or too few bytes.</summary>
    private static int MemoryOperandLength(ReadOnlySpan<byte> operand)
    {
        if (operand.IsEmpty || operand[0] >> 6 == 3)
        {
            return -1;
        }

        int mod = operand[0] >> 6;
        int rm = operand[0] & 7;
        int length = 1;
        if (rm == 4)
        {
            if (operand.Length < 2)
            {
                return -1;
            }

            length++;
            if (mod == 0 && (operand[1] & 7) == 5)
            {
                length += 4;
            }
        }
        else if (mod == 0 && rm == 5)
        {
            length += 4;                         // RIP-relative
        }

        length += mod switch
        {
            1 => 1,
            2 => 4,
            _ => 0,
        };
        return length <= operand.Length ? length : -1;
    }
}
