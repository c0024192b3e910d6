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
    internal ushort _fcs;
    internal ushort _fds;

    private void InitializeX87()
    {
    }

    private void ResetX87()
    {
        // FNINIT state; RESET leaves FCW 0x40 on real hardware but software always FNINITs.
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
        if (image.Length < 512)
        {
            throw new ArgumentException("an FXSAVE image is 512 bytes", nameof(image));
        }

        return FxrstorImage(image, wide: true);
    }

    /// <summary>FXSAVE layout; <paramref name="wide"/> selects the 64-bit FIP/FDP form (REX.W) over offset+selector.</summary>
    internal void FxsaveImage(Span<byte> image, bool wide)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(image, _fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(image[2..], FpuStatusWord);
        image[4] = _fpuValid;
        image[5] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(image[6..], _fop);
        if (wide)
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
        BinaryPrimitives.WriteUInt32LittleEndian(image[24..], _mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image[28..], MxcsrMask);
        for (int i = 0; i < 8; i++)
        {
            Span<byte> slot = image.Slice(32 + (16 * i), 16);
            Float80 v = _st[(_fpuTop + i) & 7];
            BinaryPrimitives.WriteUInt64LittleEndian(slot, v.Significand);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[8..], v.SignExponent);
            slot[10..].Clear();
        }

        for (int i = 0; i < 16; i++)
        {
            System.Runtime.Intrinsics.Vector128.CopyTo(_xmm[i], image.Slice(160 + (16 * i), 16));
        }
    }

    internal bool FxrstorImage(ReadOnlySpan<byte> image, bool wide)
    {
        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        if ((mxcsr & ~MxcsrMask) != 0)
        {
            return false;
        }

        _fcw = BinaryPrimitives.ReadUInt16LittleEndian(image);
        ushort fsw = BinaryPrimitives.ReadUInt16LittleEndian(image[2..]);
        _fpuTop = (fsw >> 11) & 7;
        _fsw = (ushort)(fsw & ~0x3800);
        _fpuValid = image[4];
        _fop = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(image[6..]) & 0x7FF);
        if (wide)
        {
            _fip = BinaryPrimitives.ReadUInt64LittleEndian(image[8..]);
            _fdp = BinaryPrimitives.ReadUInt64LittleEndian(image[16..]);
        }
        else
        {
            _fip = BinaryPrimitives.ReadUInt32LittleEndian(image[8..]);
            _fcs = BinaryPrimitives.ReadUInt16LittleEndian(image[12..]);
            _fdp = BinaryPrimitives.ReadUInt32LittleEndian(image[16..]);
            _fds = BinaryPrimitives.ReadUInt16LittleEndian(image[20..]);
        }
        _mxcsr = mxcsr;
        for (int i = 0; i < 8; i++)
        {
            ReadOnlySpan<byte> slot = image.Slice(32 + (16 * i), 16);
            _st[(_fpuTop + i) & 7] = new Float80(BinaryPrimitives.ReadUInt64LittleEndian(slot), BinaryPrimitives.ReadUInt16LittleEndian(slot[8..]));
        }

        for (int i = 0; i < 16; i++)
        {
            _xmm[i] = System.Runtime.Intrinsics.Vector128.Create<byte>(image.Slice(160 + (16 * i), 16));
        }

        return true;
    }
}
