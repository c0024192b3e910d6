using System.Buffers.Binary;

namespace SharpVisor.Emulator;

/// <summary>
/// Segmentation: descriptor-table reads, segment-register loads with the protected-mode checks,
/// and the far control transfers (JMP/CALL/RET far). Call gates and task switches are not
/// modelled: a far transfer through a system descriptor raises #GP(selector).
/// </summary>
public sealed partial class X86Cpu
{
    /// <summary>True in IA-32e mode (64-bit or compatibility): descriptor tables have 64-bit bases, gates and system descriptors are 16 bytes.</summary>
    internal bool LongModeActive => (_efer & Machine.VcpuState.EferLongModeActive) != 0;

    /// <summary>A linear address as the current mode forms it: 32-bit wrap outside IA-32e mode.</summary>
    private ulong SystemLinear(ulong address) => LongModeActive ? address : (uint)address;

    internal ulong ReadSystem(ulong linear, int size)
    {
        Span<byte> data = stackalloc byte[8];
        data.Clear();
        AccessSystem(linear, data[..size], MemoryAccess.Read);
        return BinaryPrimitives.ReadUInt64LittleEndian(data);
    }

    internal void WriteSystem(ulong linear, ulong value, int size)
    {
        Span<byte> data = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(data, value);
        AccessSystem(linear, data[..size], MemoryAccess.Write);
    }

    /// <summary>The selector error code: index, TI and the EXT bit (RPL cleared).</summary>
    private static uint SelectorError(ushort selector, uint ext = 0) => (uint)(selector & 0xFFFC) | ext;

    /// <summary>Linear address of the descriptor <paramref name="selector"/> names, after the table-limit check.</summary>
    private ulong DescriptorAddress(ushort selector, int size, ExceptionVector vector, uint ext)
    {
        ulong tableBase;
        uint limit;
        if ((selector & 4) != 0)
        {
            if (_ldtr.Unusable)
            {
                throw new CpuException(vector, SelectorError(selector, ext));
            }

            tableBase = _ldtr.Base;
            limit = _ldtr.Limit;
        }
        else
        {
            tableBase = _gdtBase;
            limit = _gdtLimit;
        }

        uint offset = (uint)(selector & 0xFFF8);
        if (offset + (uint)size - 1 > limit)
        {
            throw new CpuException(vector, SelectorError(selector, ext));
        }

        return SystemLinear(tableBase + offset);
    }

    /// <summary>Reads the 8-byte descriptor <paramref name="selector"/> names (GDT or LDT); <paramref name="vector"/>(selector) past the limit.</summary>
    private ulong ReadDescriptor(ushort selector, ExceptionVector vector = ExceptionVector.GeneralProtection, uint ext = 0) =>
        ReadSystem(DescriptorAddress(selector, 8, vector, ext), 8);

    /// <summary>Sets a code or data descriptor's accessed bit in memory, as loading it does.</summary>
    private void MarkAccessed(ushort selector, ulong descriptor)
    {
        if ((descriptor & (1UL << 40)) == 0)
        {
            ulong address = DescriptorAddress(selector, 8, ExceptionVector.GeneralProtection, 0);
            WriteSystem(address + 5, (byte)((descriptor >> 40) | 1), 1);
        }
    }

    /// <summary>
    /// Loads a data or stack segment register (MOV/POP Sreg, LDS/LES/LFS/LGS/LSS) with the checks of
    /// the current mode: #GP/#SS/#NP with the selector as error code.
    /// </summary>
    internal void LoadSegment(int seg, ushort selector)
    {
        if (_mode is CpuMode.Real or CpuMode.Virtual8086)
        {
            ref SegmentCache s = ref _segs[seg];
            s.Selector = selector;
            s.Base = (ulong)selector << 4;
            if (_mode == CpuMode.Virtual8086)
            {
                s = SegmentCache.RealMode(selector, code: false);
                s.Attributes |= 3u << 5;
            }

            if (seg == SegSs)
            {
                UpdateMode();
            }
            else
            {
                RefreshSegmentBases();
            }

            return;
        }

        int rpl = selector & 3;
        if ((selector & 0xFFFC) == 0)
        {
            if (seg == SegSs)
            {
                // Only 64-bit code below CPL 3 may run with a null SS.
                if (!(_is64 && _cpl != 3 && rpl == _cpl))
                {
                    throw new CpuException(ExceptionVector.GeneralProtection, 0);
                }

                _segs[SegSs] = SegmentCache.Null(selector, _cpl);
                UpdateMode();
                return;
            }

            // Intel clears the base too (what a 64-bit kernel relies on for FS/GS).
            _segs[seg] = SegmentCache.Null(selector);
            RefreshSegmentBases();
            return;
        }

        ulong descriptor = ReadDescriptor(selector);
        var cache = SegmentCache.FromDescriptor(selector, descriptor);
        uint error = SelectorError(selector);
        if (seg == SegSs)
        {
            if (rpl != _cpl || !cache.IsData || !cache.Writable || cache.Dpl != _cpl)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, error);
            }

            if (!cache.Present)
            {
                throw new CpuException(ExceptionVector.StackSegment, error);
            }
        }
        else
        {
            if (cache.IsSystem || (cache.IsCode && !cache.Readable))
            {
                throw new CpuException(ExceptionVector.GeneralProtection, error);
            }

            if (!cache.Conforming && (rpl > cache.Dpl || _cpl > cache.Dpl))
            {
                throw new CpuException(ExceptionVector.GeneralProtection, error);
            }

            if (!cache.Present)
            {
                throw new CpuException(ExceptionVector.SegmentNotPresent, error);
            }
        }

        MarkAccessed(selector, descriptor);
        cache.Attributes |= 1; // the cached copy is accessed too
        _segs[seg] = cache;
        if (seg == SegSs)
        {
            UpdateMode();
        }
        else
        {
            RefreshSegmentBases();
        }
    }

    /// <summary>
    /// Reads and checks the code segment a far JMP/CALL targets (same privilege only: no call gates).
    /// Returns the descriptor cache with RPL set to the CPL.
    /// </summary>
    private SegmentCache CheckFarTarget(ushort selector)
    {
        if ((selector & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong descriptor = ReadDescriptor(selector);
        var cache = SegmentCache.FromDescriptor(selector, descriptor);
        uint error = SelectorError(selector);
        if (!cache.IsCode)
        {
            // Data segments are invalid targets; call gates, task gates and TSSs are not supported.
            throw new CpuException(ExceptionVector.GeneralProtection, error);
        }

        if (cache.Conforming ? cache.Dpl > _cpl : ((selector & 3) > _cpl || cache.Dpl != _cpl))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, error);
        }

        if (!cache.Present)
        {
            throw new CpuException(ExceptionVector.SegmentNotPresent, error);
        }

        if (LongModeActive && cache.Long && cache.DefaultBig)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, error);
        }

        MarkAccessed(selector, descriptor);
        cache.Attributes |= 1;
        cache.Selector = (ushort)((selector & 0xFFFC) | _cpl);
        return cache;
    }

    /// <summary>#GP(0) unless <paramref name="offset"/> is a valid instruction pointer in code segment <paramref name="cs"/>.</summary>
    private void CheckInstructionPointer(in SegmentCache cs, ulong offset)
    {
        bool target64 = LongModeActive && cs.Long;
        if (target64 ? !IsCanonical(offset) : offset > cs.Limit)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>JMP FAR / CALL FAR to <paramref name="selector"/>:<paramref name="offset"/>; <paramref name="size"/> is the operand size (bytes) for the pushes.</summary>
    internal void FarTransfer(ushort selector, ulong offset, bool call, int size, ulong returnIp)
    {
        if (_mode is CpuMode.Real or CpuMode.Virtual8086)
        {
            offset &= size == 2 ? 0xFFFFUL : 0xFFFF_FFFF;
            if (call)
            {
                PushFrame([_segs[SegCs].Selector, returnIp], size);
            }

            ref SegmentCache cs = ref _segs[SegCs];
            cs.Selector = selector;
            cs.Base = (ulong)selector << 4;
            _rip = offset;
            _exitBlock = ExitJump;
            return;
        }

        SegmentCache target = CheckFarTarget(selector);
        if (!(LongModeActive && target.Long))
        {
            offset &= size == 2 ? 0xFFFFUL : 0xFFFF_FFFF;
        }

        CheckInstructionPointer(target, offset);
        if (call)
        {
            PushFrame([_segs[SegCs].Selector, returnIp], size);
        }

        _segs[SegCs] = target;
        _rip = offset;
        UpdateMode();
        _exitBlock = ExitJump;
    }

    /// <summary>RET FAR (RETF/LRET) with <paramref name="size"/>-byte pops, releasing <paramref name="release"/> more bytes.</summary>
    internal void FarReturn(int size, ulong release)
    {
        Span<ulong> frame = stackalloc ulong[2];
        ulong rsp = PopFrame(frame, size, Gpr(Rsp));
        ulong ip = frame[0];
        ushort selector = (ushort)frame[1];
        if (_mode is CpuMode.Real or CpuMode.Virtual8086)
        {
            ref SegmentCache cs = ref _segs[SegCs];
            cs.Selector = selector;
            cs.Base = (ulong)selector << 4;
            Gpr(Rsp) = StackAdd(rsp, release);
            _rip = ip & (size == 2 ? 0xFFFFUL : 0xFFFF_FFFF);
            _exitBlock = ExitJump;
            return;
        }

        SegmentCache target = CheckReturnTarget(selector);
        int rpl = selector & 3;
        if (!(LongModeActive && target.Long))
        {
            ip &= size == 2 ? 0xFFFFUL : 0xFFFF_FFFF;
        }

        CheckInstructionPointer(target, ip);
        if (rpl == _cpl)
        {
            _segs[SegCs] = target;
            Gpr(Rsp) = StackAdd(rsp, release);
            _rip = ip;
            UpdateMode();
            _exitBlock = ExitJump;
            return;
        }

        // Return to an outer privilege level: SS:RSP follow the parameters released.
        Span<ulong> outer = stackalloc ulong[2];
        PopFrame(outer, size, StackAdd(rsp, release));
        SegmentCache ss = CheckReturnStack((ushort)outer[1], rpl, target);
        _segs[SegCs] = target;
        _segs[SegSs] = ss;
        _rip = ip;
        UpdateMode();
        Gpr(Rsp) = (Gpr(Rsp) & ~_stackMask) | ((outer[0] + release) & _stackMask);
        NullOuterDataSegments();
        _exitBlock = ExitJump;
    }

    /// <summary>Checks the code segment a far RET or IRET returns to (privilege may only decrease).</summary>
    private SegmentCache CheckReturnTarget(ushort selector)
    {
        if ((selector & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong descriptor = ReadDescriptor(selector);
        var cache = SegmentCache.FromDescriptor(selector, descriptor);
        uint error = SelectorError(selector);
        int rpl = selector & 3;
        if (!cache.IsCode || rpl < _cpl || (cache.Conforming ? cache.Dpl > rpl : cache.Dpl != rpl))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, error);
        }

        if (!cache.Present)
        {
            throw new CpuException(ExceptionVector.SegmentNotPresent, error);
        }

        if (LongModeActive && cache.Long && cache.DefaultBig)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, error);
        }

        MarkAccessed(selector, descriptor);
        cache.Attributes |= 1;
        return cache;
    }

    /// <summary>Checks the stack segment a return to privilege <paramref name="rpl"/> loads (null allowed for 64-bit code below CPL 3).</summary>
    private SegmentCache CheckReturnStack(ushort selector, int rpl, in SegmentCache targetCs)
    {
        if ((selector & 0xFFFC) == 0)
        {
            if (LongModeActive && targetCs.Long && rpl != 3 && (selector & 3) == rpl)
            {
                return SegmentCache.Null(selector, rpl);
            }

            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong descriptor = ReadDescriptor(selector);
        var cache = SegmentCache.FromDescriptor(selector, descriptor);
        uint error = SelectorError(selector);
        if ((selector & 3) != rpl || !cache.IsData || !cache.Writable || cache.Dpl != rpl)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, error);
        }

        if (!cache.Present)
        {
            throw new CpuException(ExceptionVector.StackSegment, error);
        }

        MarkAccessed(selector, descriptor);
        cache.Attributes |= 1;
        return cache;
    }

    /// <summary>After a return to an outer level: data segments the new CPL may not use become null.</summary>
    private void NullOuterDataSegments()
    {
        foreach (int seg in (ReadOnlySpan<int>)[SegEs, SegDs, SegFs, SegGs])
        {
            ref SegmentCache s = ref _segs[seg];
            if (!s.Unusable && (s.IsData || !s.Conforming) && s.Dpl < _cpl)
            {
                s = SegmentCache.Null(0);
            }
        }

        RefreshSegmentBases();
    }

    /// <summary>
    /// Pushes <paramref name="values"/> (first value at the highest address) onto the current stack as
    /// one write, so a fault leaves memory and RSP untouched; then moves RSP.
    /// </summary>
    internal void PushFrame(ReadOnlySpan<ulong> values, int size)
    {
        ulong rsp = Gpr(Rsp);
        ulong newRsp = StackAdd(rsp, (ulong)-(long)(values.Length * size));
        ulong linear = StackFrameLinear(_segs[SegSs], newRsp & _stackMask, values.Length * size, _stackMask, 0);
        Span<byte> frame = stackalloc byte[values.Length * size];
        FillFrame(frame, values, size);
        WriteBytes(linear, frame);
        Gpr(Rsp) = newRsp;
    }

    /// <summary>Reads <paramref name="values"/>.Length <paramref name="size"/>-byte stack slots from <paramref name="rsp"/> up (first slot first) and returns the stack pointer past them; RSP does not move.</summary>
    internal ulong PopFrame(Span<ulong> values, int size, ulong rsp)
    {
        int length = values.Length * size;
        ulong linear = StackFrameLinear(_segs[SegSs], rsp & _stackMask, length, _stackMask, 0);
        Span<byte> frame = stackalloc byte[length];
        ReadBytes(linear, frame);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = size switch
            {
                2 => BinaryPrimitives.ReadUInt16LittleEndian(frame[(i * 2)..]),
                4 => BinaryPrimitives.ReadUInt32LittleEndian(frame[(i * 4)..]),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(frame[(i * 8)..]),
            };
        }

        return StackAdd(rsp, (ulong)length);
    }

    /// <summary>Lays out stack slots: the first value ends up at the highest address (pushed first).</summary>
    private static void FillFrame(Span<byte> frame, ReadOnlySpan<ulong> values, int size)
    {
        for (int i = 0; i < values.Length; i++)
        {
            Span<byte> slot = frame[((values.Length - 1 - i) * size)..];
            switch (size)
            {
                case 2: BinaryPrimitives.WriteUInt16LittleEndian(slot, (ushort)values[i]); break;
                case 4: BinaryPrimitives.WriteUInt32LittleEndian(slot, (uint)values[i]); break;
                default: BinaryPrimitives.WriteUInt64LittleEndian(slot, values[i]); break;
            }
        }
    }

    /// <summary>
    /// Linear address of a <paramref name="length"/>-byte stack area at <paramref name="offset"/> in
    /// <paramref name="ss"/>: canonical check in 64-bit mode, limit check otherwise; #SS(<paramref name="error"/>).
    /// </summary>
    private ulong StackFrameLinear(in SegmentCache ss, ulong offset, int length, ulong stackMask, uint error)
    {
        if (stackMask == ulong.MaxValue)
        {
            if (!IsCanonical(offset) || !IsCanonical(offset + (ulong)length - 1))
            {
                throw new CpuException(ExceptionVector.StackSegment, error);
            }

            return offset;
        }

        if (_mode is not (CpuMode.Real or CpuMode.Virtual8086) || ss.ExpandDown || ss.Limit != 0xFFFF)
        {
            ulong last = offset + (ulong)length - 1;
            bool outside = ss.ExpandDown
                ? offset <= ss.Limit || last > (ss.DefaultBig ? 0xFFFF_FFFFUL : 0xFFFF)
                : last > ss.Limit;
            if (outside || (ss.Unusable && _mode is not (CpuMode.Real or CpuMode.Virtual8086)))
            {
                throw new CpuException(ExceptionVector.StackSegment, error);
            }
        }

        return (uint)(ss.Base + offset);
    }
}
