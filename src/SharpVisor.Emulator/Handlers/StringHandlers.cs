using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>
/// MOVS, STOS, LODS, CMPS, SCAS with REP/REPE/REPNE. The source segment is <see cref="Op.Seg"/>,
/// the destination is always ES; registers follow the address size. A REP instruction runs
/// a bounded number of iterations per visit and then restarts itself, so a huge count never
/// blocks the vCPU thread; registers always reflect completed iterations, so faults are precise.
/// </summary>
internal static unsafe class StringHandlers
{
    /// <summary>Elements processed per visit of a REP instruction before it restarts.</summary>
    private const ulong IterationsPerVisit = 1 << 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddressMask(ref Op op) => ulong.MaxValue >> (64 - (op.AddrSize << 3));

    /// <summary>Writes an index/count register the way an address-size write does (32-bit zero-extends, 16-bit merges).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SetAddressRegister(X86Cpu cpu, int slot, ulong value, ref Op op)
    {
        if (op.AddrSize == 8)
        {
            cpu.Gpr(slot) = value;
        }
        else if (op.AddrSize == 4)
        {
            cpu.Gpr(slot) = (uint)value;
        }
        else
        {
            cpu.Gpr(slot) = (cpu.Gpr(slot) & ~0xFFFFUL) | (value & 0xFFFF);
        }
    }

    /// <summary>
    /// With a REP prefix and a 32-bit address size the processor writes the index and count
    /// registers as 32-bit registers up front, zero-extending them even when no iteration completes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ZeroExtendAddressRegisters(X86Cpu cpu, ref Op op, bool source, bool destination)
    {
        // AMD writes them only as iterations complete (a REP that faults at once leaves them whole).
        if (op.AddrSize == 4 && cpu._is64 && !cpu._amd && (op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0)
        {
            if ((op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0)
            {
                cpu.Gpr(1) = (uint)cpu.Gpr(1);
            }

            if (source)
            {
                cpu.Gpr(6) = (uint)cpu.Gpr(6);
            }

            if (destination)
            {
                cpu.Gpr(7) = (uint)cpu.Gpr(7);
            }
        }
    }

    private static ulong Step<TSize>(X86Cpu cpu)
        where TSize : struct, IOperandSize =>
        (cpu._flags & RflagsBits.Direction) != 0 ? (ulong)-TSize.Bytes : (ulong)TSize.Bytes;

    /// <summary>
    /// Suspends a REP instruction after a visit's budget of iterations: it runs again from the
    /// start, so pending interrupts are taken in between, with RF set as for any interruption
    /// after an iteration.
    /// </summary>
    private static void Restart(X86Cpu cpu, ref Op op)
    {
        cpu._rip = cpu.CurrentIp(ref op);
        cpu._exitBlock = X86Cpu.ExitJump;
        cpu._flags |= RflagsBits.Resume;
    }

    /// <summary>
    /// A REP instruction starts (or resumes) with RF clear: RF only spares the instruction's own
    /// breakpoint, checked before it runs, and an instruction that completes leaves RF clear.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BeginRep(X86Cpu cpu) => cpu._flags &= ~RflagsBits.Resume;

    /// <summary>
    /// An exception filter (always false: the exception goes on): a REP instruction that faults after
    /// at least one iteration has completed (the count moved) is suspended with RF = 1 in RFLAGS, so
    /// that resuming it after the handler does not raise its instruction breakpoint again (the SDM's
    /// and the APM's description of RF), on both vendors.
    /// </summary>
    private static bool SuspendOnFault(X86Cpu cpu, ulong countBefore)
    {
        if (cpu.Gpr(1) != countBefore)
        {
            cpu._flags |= RflagsBits.Resume;
        }

        return false;
    }

    public static void Movs<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ZeroExtendAddressRegisters(cpu, ref op, source: true, destination: true);
        ulong mask = AddressMask(ref op);
        ulong step = Step<TSize>(cpu);
        if ((op.Flags & (OpFlags.Rep | OpFlags.RepNe)) == 0)
        {
            ulong si = cpu.Gpr(6) & mask;
            ulong di = cpu.Gpr(7) & mask;
            ulong value = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, si, TSize.Bytes, MemoryAccess.Read));
            TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Write), value);
            SetAddressRegister(cpu, 6, si + step, ref op);
            SetAddressRegister(cpu, 7, di + step, ref op);
            return;
        }

        BeginRep(cpu);
        ulong countBefore = cpu.Gpr(1);
        try
        {
            MovsRep<TSize>(cpu, ref op, mask, step);
        }
        catch (CpuException) when (SuspendOnFault(cpu, countBefore))
        {
        }
    }

    private static void MovsRep<TSize>(X86Cpu cpu, ref Op op, ulong mask, ulong step)
        where TSize : struct, IOperandSize
    {
        ulong count = cpu.Gpr(1) & mask;
        ulong budget = IterationsPerVisit;
        while (count != 0)
        {
            if (budget == 0)
            {
                Restart(cpu, ref op);
                return;
            }

            ulong si = cpu.Gpr(6) & mask;
            ulong di = cpu.Gpr(7) & mask;
            ulong done = 0;
            if (step == (ulong)TSize.Bytes && cpu._is64)
            {
                ulong source = si + cpu._segBase[op.Seg];
                ulong destination = di + cpu._segBase[X86Cpu.SegEs];
                done = cpu.CopyForward(source, destination, count, TSize.Bytes);
                if (done == 0)
                {
                    // A page not yet in the TLB, or both pages competing for one slot.
                    done = cpu.CopyForwardTranslated(source, destination, count, TSize.Bytes);
                }
            }

            if (done == 0)
            {
                ulong value = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, si, TSize.Bytes, MemoryAccess.Read));
                TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Write), value);
                done = 1;
            }

            count -= done;
            budget -= Math.Min(budget, done);
            SetAddressRegister(cpu, 6, si + (step * done), ref op);
            SetAddressRegister(cpu, 7, di + (step * done), ref op);
            SetAddressRegister(cpu, 1, count, ref op);
        }
    }

    public static void Stos<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ZeroExtendAddressRegisters(cpu, ref op, source: false, destination: true);
        ulong mask = AddressMask(ref op);
        ulong step = Step<TSize>(cpu);
        ulong value = TSize.ReadReg(cpu, 0);
        if ((op.Flags & (OpFlags.Rep | OpFlags.RepNe)) == 0)
        {
            ulong di = cpu.Gpr(7) & mask;
            TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Write), value);
            SetAddressRegister(cpu, 7, di + step, ref op);
            return;
        }

        BeginRep(cpu);
        ulong countBefore = cpu.Gpr(1);
        try
        {
            StosRep<TSize>(cpu, ref op, mask, step, value);
        }
        catch (CpuException) when (SuspendOnFault(cpu, countBefore))
        {
        }
    }

    private static void StosRep<TSize>(X86Cpu cpu, ref Op op, ulong mask, ulong step, ulong value)
        where TSize : struct, IOperandSize
    {
        ulong count = cpu.Gpr(1) & mask;
        ulong budget = IterationsPerVisit;
        while (count != 0)
        {
            if (budget == 0)
            {
                Restart(cpu, ref op);
                return;
            }

            ulong di = cpu.Gpr(7) & mask;
            ulong done = step == (ulong)TSize.Bytes && cpu._is64 ? cpu.FillForward(di + cpu._segBase[X86Cpu.SegEs], count, TSize.Bytes, value) : 0;
            if (done == 0)
            {
                TSize.Write(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Write), value);
                done = 1;
            }

            count -= done;
            budget -= Math.Min(budget, done);
            SetAddressRegister(cpu, 7, di + (step * done), ref op);
            SetAddressRegister(cpu, 1, count, ref op);
        }
    }

    public static void Lods<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ZeroExtendAddressRegisters(cpu, ref op, source: true, destination: false);
        ulong mask = AddressMask(ref op);
        ulong step = Step<TSize>(cpu);
        bool rep = (op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0;
        if (!rep)
        {
            LodsLoop<TSize>(cpu, ref op, mask, step, rep);
            return;
        }

        BeginRep(cpu);
        ulong countBefore = cpu.Gpr(1);
        try
        {
            LodsLoop<TSize>(cpu, ref op, mask, step, rep);
        }
        catch (CpuException) when (SuspendOnFault(cpu, countBefore))
        {
        }
    }

    private static void LodsLoop<TSize>(X86Cpu cpu, ref Op op, ulong mask, ulong step, bool rep)
        where TSize : struct, IOperandSize
    {
        ulong count = rep ? cpu.Gpr(1) & mask : 1;
        ulong budget = IterationsPerVisit;
        while (count != 0)
        {
            if (budget-- == 0)
            {
                Restart(cpu, ref op);
                return;
            }

            ulong si = cpu.Gpr(6) & mask;
            ulong value = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, si, TSize.Bytes, MemoryAccess.Read));
            TSize.WriteReg(cpu, 0, value);
            SetAddressRegister(cpu, 6, si + step, ref op);
            count--;
            if (rep)
            {
                SetAddressRegister(cpu, 1, count, ref op);
            }
        }
    }

    public static void Cmps<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        // Unlike MOVS/STOS, a REP CMPS/SCAS zero-extends only the count up front (rSI/rDI are
        // written as 32-bit registers once an iteration completes), as on hardware.
        ZeroExtendAddressRegisters(cpu, ref op, source: false, destination: false);
        if ((op.Flags & (OpFlags.Rep | OpFlags.RepNe)) == 0)
        {
            CmpsLoop<TSize>(cpu, ref op);
            return;
        }

        // A REP compare that faults part-way: Intel restores RFLAGS to their state before the
        // instruction ("the EFLAGS value is restored to the state prior to the execution of the
        // instruction", SDM vol. 2B, REP); AMD keeps the flags of the last completed iteration.
        BeginRep(cpu);
        ulong flags = cpu.GetRflags();
        ulong countBefore = cpu.Gpr(1);
        try
        {
            CmpsLoop<TSize>(cpu, ref op);
        }
        catch (CpuException)
        {
            if (!cpu._amd)
            {
                cpu.SetRflags(flags);
            }

            SuspendOnFault(cpu, countBefore);
            throw;
        }
    }

    private static void CmpsLoop<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong mask = AddressMask(ref op);
        ulong step = Step<TSize>(cpu);
        bool rep = (op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0;
        bool whileEqual = (op.Flags & OpFlags.Rep) != 0;
        ulong count = rep ? cpu.Gpr(1) & mask : 1;
        ulong budget = IterationsPerVisit;
        while (count != 0)
        {
            if (budget-- == 0)
            {
                Restart(cpu, ref op);
                return;
            }

            ulong si = cpu.Gpr(6) & mask;
            ulong di = cpu.Gpr(7) & mask;
            if (rep && step == (ulong)TSize.Bytes && cpu._is64)
            {
                // Whole runs within the current pages at once.
                ulong done = cpu.CompareForward(si + cpu._segBase[op.Seg], di + cpu._segBase[X86Cpu.SegEs], Math.Min(count, budget + 1), TSize.Bytes, whileEqual, out ulong sa, out ulong sb);
                if (done != 0)
                {
                    CmpOp.SetFlags<TSize>(cpu, sa, sb, sa - sb);
                    SetAddressRegister(cpu, 6, si + (step * done), ref op);
                    SetAddressRegister(cpu, 7, di + (step * done), ref op);
                    count -= done;
                    budget -= done - 1;
                    SetAddressRegister(cpu, 1, count, ref op);
                    if ((sa == sb) != whileEqual)
                    {
                        return;
                    }

                    continue;
                }
            }

            // Which operand is fetched first decides which fault is reported: the ES:rDI one on Intel,
            // and on AMD too except for REPE CMPSB, which fetches DS:rSI first (measured on Zen).
            ulong a;
            ulong b;
            if (rep && whileEqual && cpu._amd && TSize.Bytes == 1)
            {
                a = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, si, TSize.Bytes, MemoryAccess.Read));
                b = TSize.Read(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Read));
            }
            else
            {
                b = TSize.Read(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Read));
                a = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, si, TSize.Bytes, MemoryAccess.Read));
            }

            CmpOp.SetFlags<TSize>(cpu, a, b, a - b);
            SetAddressRegister(cpu, 6, si + step, ref op);
            SetAddressRegister(cpu, 7, di + step, ref op);
            count--;
            if (rep)
            {
                SetAddressRegister(cpu, 1, count, ref op);
                if ((a == b) != whileEqual)
                {
                    return;
                }
            }
        }
    }

    public static void Scas<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ZeroExtendAddressRegisters(cpu, ref op, source: false, destination: false);
        if ((op.Flags & (OpFlags.Rep | OpFlags.RepNe)) == 0)
        {
            ScasLoop<TSize>(cpu, ref op);
            return;
        }

        // A REP compare that faults part-way: Intel restores RFLAGS to their state before the
        // instruction ("the EFLAGS value is restored to the state prior to the execution of the
        // instruction", SDM vol. 2B, REP); AMD keeps the flags of the last completed iteration.
        BeginRep(cpu);
        ulong flags = cpu.GetRflags();
        ulong countBefore = cpu.Gpr(1);
        try
        {
            ScasLoop<TSize>(cpu, ref op);
        }
        catch (CpuException)
        {
            if (!cpu._amd)
            {
                cpu.SetRflags(flags);
            }

            SuspendOnFault(cpu, countBefore);
            throw;
        }
    }

    private static void ScasLoop<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong mask = AddressMask(ref op);
        ulong step = Step<TSize>(cpu);
        bool rep = (op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0;
        bool whileEqual = (op.Flags & OpFlags.Rep) != 0;
        ulong count = rep ? cpu.Gpr(1) & mask : 1;
        ulong a = TSize.ReadReg(cpu, 0);
        ulong budget = IterationsPerVisit;
        while (count != 0)
        {
            if (budget-- == 0)
            {
                Restart(cpu, ref op);
                return;
            }

            ulong di = cpu.Gpr(7) & mask;
            if (rep && step == (ulong)TSize.Bytes && cpu._is64)
            {
                ulong done = cpu.ScanForward(di + cpu._segBase[X86Cpu.SegEs], Math.Min(count, budget + 1), TSize.Bytes, a & TSize.Mask, whileEqual, out ulong last);
                if (done != 0)
                {
                    CmpOp.SetFlags<TSize>(cpu, a, last, a - last);
                    SetAddressRegister(cpu, 7, di + (step * done), ref op);
                    count -= done;
                    budget -= done - 1;
                    SetAddressRegister(cpu, 1, count, ref op);
                    if (((a & TSize.Mask) == last) != whileEqual)
                    {
                        return;
                    }

                    continue;
                }
            }

            ulong b = TSize.Read(cpu, cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Read));
            CmpOp.SetFlags<TSize>(cpu, a, b, a - b);
            SetAddressRegister(cpu, 7, di + step, ref op);
            count--;
            if (rep)
            {
                SetAddressRegister(cpu, 1, count, ref op);
                if ((a == b) != whileEqual)
                {
                    return;
                }
            }
        }
    }
}
