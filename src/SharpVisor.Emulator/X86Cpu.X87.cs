using System.Buffers.Binary;

namespace SharpVisor.Emulator;

/// <summary>x87 state and the FXSAVE image (x87 + SSE).</summary>
public sealed partial class X86Cpu
{
    internal FpuRegisters _st;
    internal ushort _fcw = 0x37F;

    /// <summary>FSW without TOP (bits 11-13 live in <see cref="_fpuTop"/>).</summary>
    internal ushort _fsw;
    internal int _fpuTop;

    /// <summary>Bit i set = physical register i holds a value (the abridged tag word).</summary>
    internal byte _fpuValid;
    internal ushort _fop;
    internal ulong _fip;
    internal ulong _fdp;

    /// <summary>FCS and FDS: kept by the AMD profile only (Intel's are deprecated, CPUID.7.0:EBX[13], and saved as zero).</summary>
    internal ushort _fcs;
    internal ushort _fds;

    private void InitializeX87()
    {
    }

    /// <summary>The x87 initial configuration (XRSTOR's init): FNINIT plus zeroed registers and pointers.</summary>
    internal void ResetX87()
    {
        // RESET leaves FCW 0x40 on real hardware, but software always FNINITs.
        _fcw = 0x37F;
        _fsw = 0;
        _fpuTop = 0;
        _fpuValid = 0;
        _fop = 0;
        _fip = _fdp = 0;
        _fcs = _fds = 0;
        for (int i = 0; i < 8; i++)
        {
            _st[i] = default;
        }
    }

    /// <summary>The 16-bit status word with TOP merged in.</summary>
    internal ushort FpuStatusWord => (ushort)((_fsw & ~0x3800) | ((_fpuTop & 7) << 11));

    /// <summary>Writes the 512-byte FXSAVE image (64-bit layout) of the x87 and SSE state.</summary>
    public void Fxsave(Span<byte> image)
    {
        if (image.Length < 512)
        {
            throw new ArgumentException("an FXSAVE image is 512 bytes", nameof(image));
        }

        FxsaveImage(image, wide: true);
    }

    /// <summary>Loads the x87 and SSE state from a 512-byte FXSAVE image (64-bit layout); false when MXCSR has reserved bits set.</summary>
    public bool Fxrstor(ReadOnlySpan<byte> image)
    {
        _xinuse = XinuseX87 | XinuseSse;
        if (image.Length < 512)
        {
            throw new ArgumentException("an FXSAVE image is 512 bytes", nameof(image));
        }

        bool loaded = FxrstorImage(image, wide: true);
        RestoredSseInUse();
        return loaded;
    }

    /// <summary>FXSAVE layout; <paramref name="wide"/> selects the 64-bit FIP/FDP form (REX.W) over offset+selector.</summary>
    internal void FxsaveImage(Span<byte> image, bool wide)
    {
        SaveX87Image(image, wide);
        SaveMxcsrImage(image);
        SaveXmmImage(image);
    }

    /// <summary>
    /// The x87 part of the legacy save area: bytes 0-23 and the registers at 32-159. Intel saves the
    /// pointers always and FCS/FDS as zero; AMD saves FOP, FIP and FDP (with FCS/FDS in the 32-bit
    /// layout) only while an unmasked exception is pending (FSW.ES), and zeros otherwise (APM vol. 4,
    /// FXSAVE: "the x87 pointer registers ... are not saved ... unless ... ES ... is set to 1").
    /// </summary>
    internal void SaveX87Image(Span<byte> image, bool wide)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(image, _fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(image[2..], FpuStatusWord);
        image[4] = _fpuValid;
        image[5] = 0;
        bool pointers = !_amd || (_fsw & FswErrorSummary) != 0;
        BinaryPrimitives.WriteUInt16LittleEndian(image[6..], pointers ? _fop : (ushort)0);
        if (!pointers)
        {
            image[8..24].Clear();
        }
        else if (wide)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(image[8..], _fip);
            BinaryPrimitives.WriteUInt64LittleEndian(image[16..], _fdp);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image[8..], (uint)_fip);
            BinaryPrimitives.WriteUInt32LittleEndian(image[12..], _fcs);
            BinaryPrimitives.WriteUInt32LittleEndian(image[16..], (uint)_fdp);
            BinaryPrimitives.WriteUInt32LittleEndian(image[20..], _fds);
        }

        for (int i = 0; i < 8; i++)
        {
            Span<byte> slot = image.Slice(32 + (16 * i), 16);
            Float80 v = _st[(_fpuTop + i) & 7];
            BinaryPrimitives.WriteUInt64LittleEndian(slot, v.Significand);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[8..], v.SignExponent);
            slot[10..].Clear();
        }
    }

    /// <summary>MXCSR and MXCSR_MASK (bytes 24-31).</summary>
    internal void SaveMxcsrImage(Span<byte> image)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(image[24..], _mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image[28..], _mxcsrMask);
    }

    /// <summary>XMM0-15 (bytes 160-415).</summary>
    internal void SaveXmmImage(Span<byte> image)
    {
        for (int i = 0; i < 16; i++)
        {
            System.Runtime.Intrinsics.Vector128.CopyTo(Xmm(i), image.Slice(160 + (16 * i), 16));
        }
    }

    internal bool FxrstorImage(ReadOnlySpan<byte> image, bool wide)
    {
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        if ((mxcsr & ~_mxcsrMask) != 0)
        {
            return false;
        }

        RestoreX87Image(image, wide);
        _mxcsr = mxcsr;
        RestoreXmmImage(image);
        return true;
    }

    /// <summary>
    /// ES/B follow the exception flags not masked by FCW: hardware recomputes them whenever FCW or
    /// FSW is loaded (FLDCW, FLDENV, FRSTOR, FXRSTOR, XRSTOR), whatever the image says.
    /// </summary>
    internal void UpdateErrorSummary()
    {
        if ((_fsw & ~_fcw & 0x3F) != 0)
        {
            _fsw |= FswErrorSummary | FswBusy;
        }
        else
        {
            _fsw &= unchecked((ushort)~(FswErrorSummary | FswBusy));
        }
    }

    internal void RestoreX87Image(ReadOnlySpan<byte> image, bool wide)
    {
        _fcw = (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(image) & 0x1F3F) | 0x40); // reserved bits as hardware reads them
        ushort fsw = BinaryPrimitives.ReadUInt16LittleEndian(image[2..]);
        _fpuTop = (fsw >> 11) & 7;
        _fsw = (ushort)(fsw & ~0x3800);
        UpdateErrorSummary();
        _fpuValid = image[4];
        _fop = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(image[6..]) & 0x7FF);
        // Both vendors load the pointers whatever ES says (AMD processors of this century restore
        // them; only saving depends on ES). FCS/FDS come from the 32-bit layout on AMD.
        if (wide)
        {
            // Intel keeps FIP canonical (sign-extended from bit 47) and all 64 bits of FDP; AMD keeps
            // both as 57-bit values sign-extended from bit 56 (measured on Zen 4, whose linear
            // addresses are 57 bits wide).
            ulong fip = BinaryPrimitives.ReadUInt64LittleEndian(image[8..]);
            ulong fdp = BinaryPrimitives.ReadUInt64LittleEndian(image[16..]);
            _fip = _amd ? (ulong)((long)fip << 7 >> 7) : (ulong)((long)fip << 16 >> 16);
            _fdp = _amd ? (ulong)((long)fdp << 7 >> 7) : fdp;
            _fcs = _fds = 0;
        }
        else
        {
            _fip = BinaryPrimitives.ReadUInt32LittleEndian(image[8..]);
            _fdp = BinaryPrimitives.ReadUInt32LittleEndian(image[16..]);
            _fcs = _amd ? BinaryPrimitives.ReadUInt16LittleEndian(image[12..]) : (ushort)0;
            _fds = _amd ? BinaryPrimitives.ReadUInt16LittleEndian(image[20..]) : (ushort)0;
        }

        for (int i = 0; i < 8; i++)
        {
            ReadOnlySpan<byte> slot = image.Slice(32 + (16 * i), 16);
            _st[(_fpuTop + i) & 7] = new Float80(BinaryPrimitives.ReadUInt64LittleEndian(slot), BinaryPrimitives.ReadUInt16LittleEndian(slot[8..]));
        }
    }

    internal void RestoreXmmImage(ReadOnlySpan<byte> image)
    {
        for (int i = 0; i < 16; i++)
        {
            Xmm(i) = System.Runtime.Intrinsics.Vector128.Create<byte>(image.Slice(160 + (16 * i), 16));
        }
    }
}

/// <summary>x87 stack, tags, status and exception bookkeeping.</summary>
public sealed partial class X86Cpu
{
    internal const ushort FswStackFault = 0x40;
    internal const ushort FswErrorSummary = 0x80;
    internal const ushort FswC0 = 0x100;
    internal const ushort FswC1 = 0x200;
    internal const ushort FswC2 = 0x400;
    internal const ushort FswC3 = 0x4000;
    internal const ushort FswBusy = 0x8000;
    internal const ushort FswConditionCodes = FswC0 | FswC1 | FswC2 | FswC3;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal ref Float80 St(int i) => ref _st[(_fpuTop + i) & 7];

    internal bool StEmpty(int i) => (_fpuValid & (1 << ((_fpuTop + i) & 7))) == 0;

    internal void SetStValid(int i, bool valid)
    {
        int bit = 1 << ((_fpuTop + i) & 7);
        _fpuValid = (byte)(valid ? _fpuValid | bit : _fpuValid & ~bit);
    }

    internal void FpuPush(Float80 value)
    {
        _fpuTop = (_fpuTop - 1) & 7;
        St(0) = value;
        SetStValid(0, true);
    }

    internal void FpuPop()
    {
        SetStValid(0, false);
        _fpuTop = (_fpuTop + 1) & 7;
    }

    /// <summary>
    /// Start of an x87 instruction: #NM when CR0.EM/TS, and for waiting instructions a pending
    /// unmasked exception (FSW.ES) is delivered as #MF first.
    /// </summary>
    internal void X87Begin(bool waiting = true)
    {
        if (_fpuUnavailable)
        {
            throw new CpuException(ExceptionVector.DeviceNotAvailable);
        }

        _xinuse |= XinuseX87;
        if (waiting && (_fsw & FswErrorSummary) != 0)
        {
            throw new CpuException(ExceptionVector.FloatingPoint);
        }
    }

    /// <summary>
    /// Records the pointers of a non-control x87 instruction. Intel: FIP only (FOP and FDP change on
    /// unmasked exceptions). AMD: FIP, FCS and FOP always, FDP and FDS when the instruction has a memory
    /// operand (a register-only instruction leaves the last data pointer).
    /// </summary>
    internal void X87Record(ref Op op)
    {
        _fip = CurrentIp(ref op);
        if (_amd)
        {
            _fop = (ushort)op.Imm;
            _fcs = _segs[SegCs].Selector;
            if ((op.Flags & OpFlags.Memory) != 0)
            {
                _fdp = EffectiveAddress(ref op);
                _fds = _segs[op.Seg].Selector;
            }
        }
    }

    /// <summary>
    /// Merges exception flags into FSW and sets C1 from the rounding direction. Returns false when an
    /// unmasked invalid, denormal or divide-by-zero exception means the destination is left alone.
    /// An unmasked exception sets ES/B and records FOP (and the data pointer) for the handler.
    /// </summary>
    internal bool X87Commit(ref FloatEnvironment env, ref Op op, ulong? dataPointer = null)
    {
        uint flags = env.Flags;
        const uint preComputation = FloatFlags.Invalid | FloatFlags.Denormal | FloatFlags.DivideByZero;
        if ((flags & preComputation & ~(uint)_fcw) != 0)
        {
            // An unmasked invalid, denormal or divide-by-zero stops the operation before it computes.
            flags &= preComputation;
            env.RoundedUp = false;
        }

        _fsw = (ushort)((uint)(_fsw & ~FswC1) | (flags & FloatFlags.All));
        if ((flags & FloatFlags.Inexact) != 0 && env.RoundedUp)
        {
            _fsw |= FswC1;
        }

        uint unmasked = flags & ~(uint)_fcw & FloatFlags.All;
        if (unmasked != 0)
        {
            _fsw |= FswErrorSummary | FswBusy;
            _fop = (ushort)op.Imm;
            if (dataPointer is ulong pointer)
            {
                _fdp = pointer;
            }
        }

        return (unmasked & (FloatFlags.Invalid | FloatFlags.Denormal | FloatFlags.DivideByZero)) == 0;
    }

    /// <summary>Stack overflow/underflow: IE + SF, C1 = overflow. Returns true when masked (the default response applies).</summary>
    internal bool X87StackFault(bool overflow, ref Op op, ulong? dataPointer = null)
    {
        _fsw = (ushort)((uint)(_fsw & ~FswC1) | FswStackFault | FloatFlags.Invalid | (overflow ? FswC1 : 0u));
        if ((_fcw & 1) == 0)
        {
            _fsw |= FswErrorSummary | FswBusy;
            _fop = (ushort)op.Imm;
            if (dataPointer is ulong pointer)
            {
                _fdp = pointer;
            }

            return false;
        }

        return true;
    }

    /// <summary>The 2-bit tag of physical register <paramref name="physical"/>: 0 valid, 1 zero, 2 special, 3 empty.</summary>
    internal int FullTag(int physical)
    {
        if ((_fpuValid & (1 << physical)) == 0)
        {
            return 3;
        }

        Float80 v = _st[physical];
        int e = v.Exponent;
        if (e == 0x7FFF || (e != 0 && (v.Significand >> 63) == 0) || (e == 0 && v.Significand != 0))
        {
            return 2;
        }

        return e == 0 && v.Significand == 0 ? 1 : 0;
    }

    internal ushort FullTagWord()
    {
        int word = 0;
        for (int i = 0; i < 8; i++)
        {
            word |= FullTag(i) << (2 * i);
        }

        return (ushort)word;
    }

    /// <summary>MMX instructions make the x87 stack an MMX register file: TOP = 0, all tags valid.</summary>
    internal void EnterMmx()
    {
        _xinuse |= XinuseX87;
        _fpuTop = 0;
        _fpuValid = 0xFF;
    }

    internal ulong ReadMmx(int index) => _st[index].Significand;

    internal void WriteMmx(int index, ulong value) => _st[index] = new Float80(value, 0xFFFF);
}
