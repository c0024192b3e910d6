using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>SSE operand access and availability checks.</summary>
public sealed unsafe partial class X86Cpu
{
    /// <summary>Non-zero when SSE instructions cannot run (CR0.EM, CR0.TS or !CR4.OSFXSR); refreshed by UpdateMode.</summary>
    internal bool _sseUnavailable;

    /// <summary>Non-zero when x87/MMX instructions fault (CR0.EM or CR0.TS).</summary>
    internal bool _fpuUnavailable;

    /// <summary>
    /// XINUSE for the x87 (bit 0) and SSE (bit 1) components: cleared when XRSTOR initializes a component,
    /// set again by any instruction of that component (XSAVE reports it in XSTATE_BV, as hardware does).
    /// </summary>
    internal int _xinuse;

    internal const int XinuseX87 = 1;
    internal const int XinuseSse = 2;

    /// <summary>
    /// XINUSE as XSAVE reports it in XSTATE_BV. The SDM lets a processor report a component in its
    /// initial configuration either way; the vendors differ (measured, docs/emulator.md). Intel: the
    /// tracked bits. AMD: x87 in use exactly when its state (FCW, FSW, tags, the eight registers; not
    /// the pointers) differs from the initial configuration, SSE as tracked — with FXRSTOR/XRSTOR
    /// setting it only when an XMM register is non-zero (<see cref="RestoredSseInUse"/>).
    /// </summary>
    internal int XsaveInUse()
    {
        if (!_amd)
        {
            return _xinuse;
        }

        bool x87Initial = _fcw == 0x37F && FpuStatusWord == 0 && _fpuValid == 0;
        for (int i = 0; x87Initial && i < 8; i++)
        {
            x87Initial = _st[i].Significand == 0 && _st[i].SignExponent == 0;
        }

        return (_xinuse & XinuseSse) | (x87Initial ? 0 : XinuseX87);
    }

    /// <summary>After FXRSTOR/XRSTOR loaded the XMM registers: AMD marks SSE in use only when one is non-zero, Intel always.</summary>
    internal void RestoredSseInUse()
    {
        bool inUse = !_amd;
        for (int i = 0; !inUse && i < 16; i++)
        {
            inUse = Xmm(i) != Vector128<byte>.Zero;
        }

        _xinuse = inUse ? _xinuse | XinuseSse : _xinuse & ~XinuseSse;
    }

    internal void RefreshFpuAvailability()
    {
        bool em = (_cr0 & Cr0Emulation) != 0;
        bool ts = (_cr0 & Cr0TaskSwitched) != 0;
        _sseUnavailable = em || ts || (_cr4 & Cr4OsFxsr) == 0;
        _fpuUnavailable = em || ts;
    }

    /// <summary>#UD when SSE is disabled (CR0.EM, !CR4.OSFXSR), #NM when the state is not loaded (CR0.TS).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckSse()
    {
        if (_sseUnavailable)
        {
            SseUnavailable();
        }

        _xinuse |= XinuseSse;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SseUnavailable()
    {
        if ((_cr0 & Cr0Emulation) != 0 || (_cr4 & Cr4OsFxsr) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        throw new CpuException(ExceptionVector.DeviceNotAvailable);
    }

    /// <summary>The r/m source of an SSE instruction: an XMM register or memory (zero-extended to 128 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector128<byte> SseSource(ref Op op)
    {
        if ((op.Flags & OpFlags.Memory) == 0)
        {
            return Xmm(op.Rm);
        }

        return LoadSse(ref op);
    }

    internal Vector128<byte> LoadSse(ref Op op)
    {
        int size = op.OpSize;
        ulong linear = SseLinear(ref op, size, MemoryAccess.Read);
        return size switch
        {
            16 => Read128(linear),
            8 => Vector128.CreateScalar(Read64(linear)).AsByte(),
            4 => Vector128.CreateScalar(Read32(linear)).AsByte(),
            2 => Vector128.CreateScalar(Read16(linear)).AsByte(),
            _ => Vector128.CreateScalar(Read8(linear)),
        };
    }

    internal void StoreSse(ref Op op, Vector128<byte> value)
    {
        int size = op.OpSize;
        ulong linear = SseLinear(ref op, size, MemoryAccess.Write);
        switch (size)
        {
            case 16: Write128(linear, value); break;
            case 8: Write64(linear, value.AsUInt64().ToScalar()); break;
            case 4: Write32(linear, value.AsUInt32().ToScalar()); break;
            case 2: Write16(linear, value.AsUInt16().ToScalar()); break;
            default: Write8(linear, value.ToScalar()); break;
        }
    }

    /// <summary>
    /// Linear address of an SSE memory operand; a misaligned aligned-only operand is #GP(0) before other
    /// checks — unless AMD's misaligned SSE mode (MXCSR.MM) is on and the instruction is not one of the
    /// explicitly aligned moves (MOVAPS, MOVDQA, MOVNT*, ...), which fault in every mode (APM vol. 1, 4.4.3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong SseLinear(ref Op op, int size, MemoryAccess access)
    {
        if ((op.Flags & OpFlags.Aligned) != 0 && ((EffectiveAddress(ref op) + _segBase[op.Seg]) & 15) != 0
            && ((_mxcsr & MxcsrMisalignedMask) == 0 || (op.Flags & OpFlags.ExplicitlyAligned) != 0))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        return Linear(ref op, size, access);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector128<byte> Read128(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadTag == Tag(linear) && (linear & 0xFFF) <= 0xFF0)
        {
            return Unsafe.ReadUnaligned<Vector128<byte>>((void*)((nint)linear + e.Addend));
        }

        Span<byte> data = stackalloc byte[16];
        ReadBytes(linear, data);
        return Vector128.Create<byte>(data);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write128(ulong linear, Vector128<byte> value)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear) && (linear & 0xFFF) <= 0xFF0)
        {
            Unsafe.WriteUnaligned((void*)((nint)linear + e.Addend), value);
            return;
        }

        Span<byte> data = stackalloc byte[16];
        value.CopyTo(data);
        WriteBytes(linear, data);
    }
}

/// <summary>MXCSR-driven floating-point environment for SSE instructions.</summary>
public sealed partial class X86Cpu
{
    internal FloatEnvironment SimdEnvironment() => FloatEnvironment.FromMxcsr(_mxcsr);

    /// <summary>Records the flags; an unmasked one raises #XM (or #UD without CR4.OSXMMEXCPT) before the destination is written.</summary>
    internal void CommitSimd(ref FloatEnvironment env)
    {
        // Pre-computation exceptions (invalid, denormal, divide-by-zero) of all lanes are checked
        // first: an unmasked one stops the instruction before any post-computation flag is set.
        uint unmasked = ~(_mxcsr >> 7) & FloatFlags.All;
        uint pre = env.Flags & (FloatFlags.Invalid | FloatFlags.Denormal | FloatFlags.DivideByZero);
        if ((pre & unmasked) != 0)
        {
            _mxcsr |= pre;
            SimdException();
        }

        uint flags = env.Flags;
        _mxcsr |= flags;
        if ((flags & unmasked) != 0)
        {
            SimdException();
        }
    }

    [DoesNotReturn]
    private void SimdException() =>
        throw new CpuException((_cr4 & Cr4OsXmmExceptions) != 0 ? ExceptionVector.SimdFloatingPoint : ExceptionVector.InvalidOpcode);
}
