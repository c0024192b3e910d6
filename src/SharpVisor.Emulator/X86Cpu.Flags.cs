using System.Numerics;
using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>RFLAGS with lazily evaluated status flags.</summary>
public sealed partial class X86Cpu
{
    // RFLAGS. While _lazy != 0 its six status bits are stale and come from the lazy state.
    internal ulong _flags = RflagsBits.Reserved1;
    internal int _lazy;

    // Operands masked to the operation size; the result sign-extended to 64 bits (so ZF/SF need no size).
    internal ulong _lazyA;
    internal ulong _lazyB;
    internal ulong _lazyRes;

    // Carry-in of ADC/SBB, or the preserved CF of INC/DEC.
    internal ulong _lazyCarry;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetLazy(int kind, int sizeIndex, ulong a, ulong b, ulong signExtendedResult)
    {
        _lazy = (kind << 2) | sizeIndex;
        _lazyA = a;
        _lazyB = b;
        _lazyRes = signExtendedResult;
    }

    internal bool CarryFlag
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            // The common producers inline (INC/DEC read CF after ADD/SUB/CMP in every counted loop).
            switch (_lazy >> 2)
            {
                case LazyFlags.None:
                    return (_flags & RflagsBits.Carry) != 0;
                case LazyFlags.Sub:
                    return _lazyA < _lazyB;
                case LazyFlags.Logic:
                    return false;
                case LazyFlags.Inc:
                case LazyFlags.Dec:
                    return _lazyCarry != 0;
                default:
                    return (LazyCarry() & 1) != 0;
            }
        }
    }

    internal bool ZeroFlag => _lazy == 0 ? (_flags & RflagsBits.Zero) != 0 : _lazyRes == 0;

    internal bool SignFlag => _lazy == 0 ? (_flags & RflagsBits.Sign) != 0 : (long)_lazyRes < 0;

    internal bool OverflowFlag => _lazy == 0 ? (_flags & RflagsBits.Overflow) != 0 : LazyOverflow();

    internal bool ParityFlag => _lazy == 0 ? (_flags & RflagsBits.Parity) != 0 : Parity(_lazyRes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Parity(ulong value) => (BitOperations.PopCount((uint)(byte)value) & 1) == 0;

    private ulong LazyCarry()
    {
        ulong mask = LazyFlags.Masks[_lazy & 3];
        ulong res = _lazyRes & mask;
        return (_lazy >> 2) switch
        {
            LazyFlags.Add => res < _lazyA ? 1UL : 0,
            LazyFlags.Adc => (_lazyCarry != 0 ? res <= _lazyA : res < _lazyA) ? 1UL : 0,
            LazyFlags.Sub => _lazyA < _lazyB ? 1UL : 0,
            LazyFlags.Sbb => (_lazyCarry != 0 ? _lazyA <= _lazyB : _lazyA < _lazyB) ? 1UL : 0,
            LazyFlags.Inc or LazyFlags.Dec => _lazyCarry,
            _ => 0,
        };
    }

    private bool LazyOverflow()
    {
        int bits = 8 << (_lazy & 3);
        ulong sign = 1UL << (bits - 1);
        ulong res = _lazyRes;
        return (_lazy >> 2) switch
        {
            LazyFlags.Add or LazyFlags.Adc => ((_lazyA ^ res) & (_lazyB ^ res) & sign) != 0,
            LazyFlags.Sub or LazyFlags.Sbb => ((_lazyA ^ _lazyB) & (_lazyA ^ res) & sign) != 0,
            LazyFlags.Inc => (res & LazyFlags.Masks[_lazy & 3]) == sign,
            LazyFlags.Dec => (res & LazyFlags.Masks[_lazy & 3]) == sign - 1,
            _ => false,
        };
    }

    private bool LazyAdjust()
    {
        return (_lazy >> 2) switch
        {
            LazyFlags.Add or LazyFlags.Adc or LazyFlags.Sub or LazyFlags.Sbb => ((_lazyA ^ _lazyB ^ _lazyRes) & 0x10) != 0,
            LazyFlags.Inc => (_lazyRes & 0xF) == 0,
            LazyFlags.Dec => (_lazyRes & 0xF) == 0xF,
            _ => false,
        };
    }

    /// <summary>RFLAGS with the status flags evaluated.</summary>
    internal ulong GetRflags()
    {
        if (_lazy == 0)
        {
            return _flags;
        }

        ulong f = _flags & ~RflagsBits.Arithmetic;
        f |= LazyCarry() & 1;
        f |= Parity(_lazyRes) ? RflagsBits.Parity : 0;
        f |= LazyAdjust() ? RflagsBits.Adjust : 0;
        f |= _lazyRes == 0 ? RflagsBits.Zero : 0;
        f |= (long)_lazyRes < 0 ? RflagsBits.Sign : 0;
        f |= LazyOverflow() ? RflagsBits.Overflow : 0;
        return f;
    }

    internal void SetRflags(ulong value)
    {
        ulong changed = _flags ^ value;
        _flags = (value & RflagsBits.Defined) | RflagsBits.Reserved1;
        _lazy = 0;
        if ((changed & RflagsBits.AlignmentCheck) != 0 && _tlb is not null)
        {
            // SMAP: supervisor data accesses use another TLB context while AC is set.
            RefreshTlbContext();
        }
    }

    /// <summary>Evaluates the lazy flags into RFLAGS (before an instruction that changes only some of them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void MaterializeFlags()
    {
        if (_lazy != 0)
        {
            _flags = GetRflags();
            _lazy = 0;
        }
    }

    /// <summary>Replaces the six status flags with <paramref name="arithmetic"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetStatusFlags(ulong arithmetic)
    {
        _flags = (_flags & ~RflagsBits.Arithmetic) | arithmetic;
        _lazy = 0;
    }

    /// <summary>Replaces the status flags selected by <paramref name="mask"/>, keeping the others.</summary>
    internal void UpdateStatusFlags(ulong mask, ulong values)
    {
        MaterializeFlags();
        _flags = (_flags & ~mask) | (values & mask);
    }

    /// <summary>SF, ZF and PF of a result as one mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong ResultFlags(ulong signExtended)
    {
        ulong f = signExtended == 0 ? RflagsBits.Zero : 0;
        f |= (signExtended >> 56) & RflagsBits.Sign;
        f |= Parity(signExtended) ? RflagsBits.Parity : 0;
        return f;
    }

    /// <summary>Evaluates condition code <paramref name="cc"/> (the low nibble of Jcc/SETcc/CMOVcc).</summary>
    internal bool Condition(int cc)
    {
        int kind = _lazy >> 2;
        bool r;
        if (kind == LazyFlags.Sub)
        {
            // CMP/SUB: compare the operands directly.
            switch (cc >> 1)
            {
                case 1: r = _lazyA < _lazyB; break;
                case 2: r = _lazyRes == 0; break;
                case 3: r = _lazyA <= _lazyB; break;
                case 4: r = (long)_lazyRes < 0; break;
                case 6:
                {
                    int shift = 64 - (8 << (_lazy & 3));
                    r = (long)(_lazyA << shift) < (long)(_lazyB << shift);
                    break;
                }

                case 7:
                {
                    int shift = 64 - (8 << (_lazy & 3));
                    r = (long)(_lazyA << shift) <= (long)(_lazyB << shift);
                    break;
                }

                default: return GenericCondition(cc);
            }
        }
        else if (kind == LazyFlags.Logic)
        {
            switch (cc >> 1)
            {
                case 0: r = false; break;
                case 1: r = false; break;
                case 2: r = _lazyRes == 0; break;
                case 3: r = _lazyRes == 0; break;
                case 4: r = (long)_lazyRes < 0; break;
                case 6: r = (long)_lazyRes < 0; break;
                case 7: r = _lazyRes == 0 || (long)_lazyRes < 0; break;
                default: return GenericCondition(cc);
            }
        }
        else
        {
            return GenericCondition(cc);
        }

        return r ^ ((cc & 1) != 0);
    }

    private bool GenericCondition(int cc)
    {
        bool r = (cc >> 1) switch
        {
            0 => OverflowFlag,
            1 => CarryFlag,
            2 => ZeroFlag,
            3 => CarryFlag || ZeroFlag,
            4 => SignFlag,
            5 => ParityFlag,
            6 => SignFlag != OverflowFlag,
            _ => ZeroFlag || SignFlag != OverflowFlag,
        };
        return r ^ ((cc & 1) != 0);
    }
}

/// <summary>Privilege-dependent RFLAGS writes.</summary>
public sealed partial class X86Cpu
{
    internal int Iopl => (int)((_flags >> 12) & 3);

    /// <summary>POPF/IRET-style RFLAGS load: IOPL only at CPL 0, IF only when CPL ≤ IOPL, VM/VIF/VIP never.</summary>
    internal void WriteFlagsFromPopf(ulong value, ulong sizeMask)
    {
        ulong changeable = RflagsBits.Arithmetic | RflagsBits.Trap | RflagsBits.Direction | RflagsBits.NestedTask
            | RflagsBits.AlignmentCheck | RflagsBits.Id;
        if (_mode == CpuMode.Real || _cpl == 0)
        {
            changeable |= RflagsBits.Iopl | RflagsBits.Interrupt;
        }
        else if (_cpl <= Iopl)
        {
            changeable |= RflagsBits.Interrupt;
        }

        changeable &= sizeMask;
        ulong f = GetRflags();
        f = (f & ~changeable) | (value & changeable);
        SetRflags(f & ~RflagsBits.Resume);
    }
}
