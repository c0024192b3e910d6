namespace SharpVisor.Emulator;

/// <summary>
/// System instructions: control/debug/segment register moves, descriptor tables, far transfers,
/// IRET, MSRs and fast system calls. The work is in X86Cpu's System, Segments, Interrupts and
/// Msr parts; these bind operands to it. Op.Reg holds a CR/DR/segment number where one is named.
/// </summary>
internal static class SystemHandlers
{
    // ---- Control and debug registers --------------------------------------------------------

    public static void MovToCr(X86Cpu cpu, ref Op op)
    {
        cpu.RequireCpl0();
        ulong value = cpu.Gpr(op.Rm / 8);
        cpu.WriteControlRegister(op.Reg, cpu._is64 ? value : (uint)value);
    }

    public static void MovFromCr(X86Cpu cpu, ref Op op)
    {
        cpu.RequireCpl0();
        ulong value = cpu.ReadControlRegister(op.Reg);
        cpu.Gpr(op.Rm / 8) = cpu._is64 ? value : (uint)value;
    }

    public static void MovToDr(X86Cpu cpu, ref Op op)
    {
        ulong value = cpu.Gpr(op.Rm / 8);
        cpu.WriteDebugRegister(op.Reg, cpu._is64 ? value : (uint)value);
    }

    public static void MovFromDr(X86Cpu cpu, ref Op op)
    {
        ulong value = cpu.ReadDebugRegister(op.Reg);
        cpu.Gpr(op.Rm / 8) = cpu._is64 ? value : (uint)value;
    }

    public static void Clts(X86Cpu cpu, ref Op op) => cpu.ClearTaskSwitched();

    public static void Lmsw(X86Cpu cpu, ref Op op) => cpu.LoadMachineStatusWord(ReadSelectorOperand(cpu, ref op));

    /// <summary>SMSW: CR0's low word to memory, or CR0 at the operand size to a register.</summary>
    public static void Smsw(X86Cpu cpu, ref Op op)
    {
        cpu.CheckUserModeInstructionPrevention();
        StoreSelectorOperand(cpu, ref op, cpu._cr0);
    }

    public static void Stac(X86Cpu cpu, ref Op op) => cpu.SetAlignmentCheckFlag(true);

    public static void Clac(X86Cpu cpu, ref Op op) => cpu.SetAlignmentCheckFlag(false);

    // ---- Segment registers ------------------------------------------------------------------

    /// <summary>MOV Sreg, r/m16 (MOV SS starts an interrupt shadow, which holds #DB traps too).</summary>
    public static void MovToSreg(X86Cpu cpu, ref Op op)
    {
        cpu.LoadSegment(op.Reg, ReadSelectorOperand(cpu, ref op));
        if (op.Reg == X86Cpu.SegSs)
        {
            cpu.BeginMovSsShadow();
        }
    }

    /// <summary>MOV r/m, Sreg: 16 bits to memory; a register gets the zero-extended selector at the operand size.</summary>
    public static void MovFromSreg(X86Cpu cpu, ref Op op) => StoreSelectorOperand(cpu, ref op, cpu._segs[op.Reg].Selector);

    public static void PushSreg<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize =>
        cpu.Push<TSize>(cpu._segs[op.Reg].Selector);

    public static void PopSreg<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ushort selector = (ushort)cpu.PeekStack<TSize>(0);
        cpu.LoadSegment(op.Reg, selector);
        cpu.Gpr(X86Cpu.Rsp) = cpu.StackAdd(cpu.Gpr(X86Cpu.Rsp), (ulong)TSize.Bytes);
        if (op.Reg == X86Cpu.SegSs)
        {
            cpu.BeginMovSsShadow();
        }
    }

    /// <summary>LDS/LES/LFS/LGS/LSS r, m16:16/32/64 (Reg = general register, Aux = segment, OpSize = offset size).</summary>
    public static void LoadFarPointer(X86Cpu cpu, ref Op op)
    {
        (ushort selector, ulong offset) = ReadFarPointer(cpu, ref op);
        cpu.LoadSegment(op.Aux, selector);
        WriteSized(cpu, op.Reg, op.OpSize, offset);
        if (op.Aux == X86Cpu.SegSs)
        {
            cpu.BeginInterruptShadow();
        }
    }

    // ---- Far transfers and interrupt return -------------------------------------------------

    /// <summary>JMP ptr16:16/32 (Imm = offset, Aux = selector).</summary>
    public static void JmpFarImmediate(X86Cpu cpu, ref Op op) =>
        cpu.FarTransfer(op.Aux, op.Imm, call: false, op.OpSize, 0);

    public static void CallFarImmediate(X86Cpu cpu, ref Op op) =>
        cpu.FarTransfer(op.Aux, op.Imm, call: true, op.OpSize, cpu.NextIp(ref op));

    /// <summary>JMP m16:16/32/64 (OpSize = offset size).</summary>
    public static void JmpFarMemory(X86Cpu cpu, ref Op op)
    {
        (ushort selector, ulong offset) = ReadFarPointer(cpu, ref op);
        cpu.FarTransfer(selector, offset, call: false, op.OpSize, 0);
    }

    public static void CallFarMemory(X86Cpu cpu, ref Op op)
    {
        (ushort selector, ulong offset) = ReadFarPointer(cpu, ref op);
        cpu.FarTransfer(selector, offset, call: true, op.OpSize, cpu.NextIp(ref op));
    }

    private static (ushort Selector, ulong Offset) ReadFarPointer(X86Cpu cpu, ref Op op)
    {
        Span<byte> pointer = stackalloc byte[10];
        int size = op.OpSize;
        cpu.ReadBytes(cpu.Linear(ref op, size + 2, MemoryAccess.Read), pointer[..(size + 2)]);
        ulong offset = size switch
        {
            2 => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(pointer),
            4 => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(pointer),
            _ => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(pointer),
        };
        return (System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(pointer[size..]), offset);
    }

    /// <summary>RETF [imm16] (OpSize = slot size, Imm = bytes released).</summary>
    public static void RetFar(X86Cpu cpu, ref Op op) => cpu.FarReturn(op.OpSize, op.Imm);

    public static void Iret(X86Cpu cpu, ref Op op) => cpu.InterruptReturn(op.OpSize);

    // ---- Descriptor tables ------------------------------------------------------------------

    /// <summary>LGDT/LIDT (Aux = 1 for the IDT, OpSize = operand size).</summary>
    public static void LoadDescriptorTable(X86Cpu cpu, ref Op op) =>
        cpu.LoadDescriptorTable(op.Aux == 1, cpu.Linear(ref op, cpu._is64 ? 10 : 6, MemoryAccess.Read), op.OpSize);

    public static void StoreDescriptorTable(X86Cpu cpu, ref Op op)
    {
        cpu.CheckUserModeInstructionPrevention();
        cpu.StoreDescriptorTable(op.Aux == 1, cpu.Linear(ref op, cpu._is64 ? 10 : 6, MemoryAccess.Write));
    }

    public static void Lldt(X86Cpu cpu, ref Op op) => cpu.LoadLdt(ReadSelectorOperand(cpu, ref op));

    public static void Ltr(X86Cpu cpu, ref Op op) => cpu.LoadTaskRegister(ReadSelectorOperand(cpu, ref op));

    public static void Sldt(X86Cpu cpu, ref Op op)
    {
        cpu.RequireProtectedMode();
        cpu.CheckUserModeInstructionPrevention();
        StoreSelectorOperand(cpu, ref op, cpu.LdtSelector);
    }

    public static void Str(X86Cpu cpu, ref Op op)
    {
        cpu.RequireProtectedMode();
        cpu.CheckUserModeInstructionPrevention();
        StoreSelectorOperand(cpu, ref op, cpu.TaskRegisterSelector);
    }

    /// <summary>LAR r, r/m16 (Reg = destination, OpSize = its size): ZF = 1 and the access rights when visible.</summary>
    public static void Lar(X86Cpu cpu, ref Op op)
    {
        bool valid = cpu.LoadAccessRights(ReadSelectorOperand(cpu, ref op), out ulong rights);
        SetZeroFlag(cpu, valid);
        if (valid)
        {
            WriteSized(cpu, op.Reg, op.OpSize, rights);
        }
    }

    public static void Lsl(X86Cpu cpu, ref Op op)
    {
        bool valid = cpu.LoadSegmentLimit(ReadSelectorOperand(cpu, ref op), out ulong limit);
        SetZeroFlag(cpu, valid);
        if (valid)
        {
            WriteSized(cpu, op.Reg, op.OpSize, limit);
        }
    }

    /// <summary>VERR (Aux = 0) / VERW (Aux = 1).</summary>
    public static void Verify(X86Cpu cpu, ref Op op) =>
        SetZeroFlag(cpu, cpu.VerifySegment(ReadSelectorOperand(cpu, ref op), write: op.Aux == 1));

    // ---- TLB, caches, MSRs, fast system calls ------------------------------------------------

    /// <summary>INVLPG m: drops the translation of the page holding the operand's linear address.</summary>
    public static void Invlpg(X86Cpu cpu, ref Op op)
    {
        cpu.RequireCpl0();
        ulong linear = cpu.EffectiveAddress(ref op) + cpu._segBase[op.Seg];
        cpu.FlushTlbPage(cpu._is64 ? linear : (uint)linear);
    }

    /// <summary>WBINVD, INVD: caches are not modelled.</summary>
    public static void PrivilegedNop(X86Cpu cpu, ref Op op) => cpu.RequireCpl0();

    public static void Rdmsr(X86Cpu cpu, ref Op op) => cpu.ExecuteRdmsr();

    public static void Wrmsr(X86Cpu cpu, ref Op op) => cpu.ExecuteWrmsr();

    /// <summary>RDPMC: no performance counters exist, so every counter index is invalid.</summary>
    public static void Rdpmc(X86Cpu cpu, ref Op op) => throw new CpuException(ExceptionVector.GeneralProtection, 0);

    public static void Syscall(X86Cpu cpu, ref Op op) => cpu.ExecuteSyscall(cpu.NextIp(ref op));

    /// <summary>SYSRET (Aux = 1 for SYSRETQ, to 64-bit code).</summary>
    public static void Sysret(X86Cpu cpu, ref Op op) => cpu.ExecuteSysret(op.Aux == 1);

    public static void Sysenter(X86Cpu cpu, ref Op op) => cpu.ExecuteSysenter();

    public static void Sysexit(X86Cpu cpu, ref Op op) => cpu.ExecuteSysexit(op.Aux == 1);

    public static void Swapgs(X86Cpu cpu, ref Op op) => cpu.ExecuteSwapgs();

    // ---- String I/O ---------------------------------------------------------------------------

    /// <summary>Port reads and writes per visit of a REP INS/OUTS before it restarts (devices are slow).</summary>
    private const ulong IoIterationsPerVisit = 4096;

    /// <summary>INS: port DX to ES:rDI (REP: rCX times). The destination is checked before the port is read.</summary>
    public static void Ins<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ushort port = (ushort)cpu.Gpr(2);
        cpu.CheckIoPermission(port, TSize.Bytes);
        ulong mask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        bool rep = (op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0;
        ulong count = rep ? cpu.Gpr(1) & mask : 1;
        ulong step = (cpu._flags & RflagsBits.Direction) != 0 ? (ulong)-TSize.Bytes : (ulong)TSize.Bytes;
        Span<byte> data = stackalloc byte[8];
        for (ulong done = 0; done < Math.Min(count, IoIterationsPerVisit); done++)
        {
            ulong di = cpu.Gpr(7) & mask;
            ulong linear = cpu.SegmentLinear(X86Cpu.SegEs, di, TSize.Bytes, MemoryAccess.Write);
            cpu.ProbeWrite(linear, TSize.Bytes);
            data.Fill(0xFF);
            cpu.PortIo?.Read(port, data[..TSize.Bytes]);
            TSize.Write(cpu, linear, BitConverter.ToUInt64(data));
            SetAddressRegister(cpu, 7, di + step, op.AddrSize);
            if (rep)
            {
                SetAddressRegister(cpu, 1, (cpu.Gpr(1) & mask) - 1, op.AddrSize);
            }
        }

        RestartIfUnfinished(cpu, ref op, rep, mask);
    }

    /// <summary>OUTS: seg:rSI (DS unless overridden) to port DX (REP: rCX times).</summary>
    public static void Outs<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ushort port = (ushort)cpu.Gpr(2);
        cpu.CheckIoPermission(port, TSize.Bytes);
        ulong mask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        bool rep = (op.Flags & (OpFlags.Rep | OpFlags.RepNe)) != 0;
        ulong count = rep ? cpu.Gpr(1) & mask : 1;
        ulong step = (cpu._flags & RflagsBits.Direction) != 0 ? (ulong)-TSize.Bytes : (ulong)TSize.Bytes;
        Span<byte> data = stackalloc byte[8];
        for (ulong done = 0; done < Math.Min(count, IoIterationsPerVisit); done++)
        {
            ulong si = cpu.Gpr(6) & mask;
            ulong value = TSize.Read(cpu, cpu.SegmentLinear(op.Seg, si, TSize.Bytes, MemoryAccess.Read));
            BitConverter.TryWriteBytes(data, value);
            cpu.PortIo?.Write(port, data[..TSize.Bytes]);
            SetAddressRegister(cpu, 6, si + step, op.AddrSize);
            if (rep)
            {
                SetAddressRegister(cpu, 1, (cpu.Gpr(1) & mask) - 1, op.AddrSize);
            }
        }

        RestartIfUnfinished(cpu, ref op, rep, mask);
    }

    private static void RestartIfUnfinished(X86Cpu cpu, ref Op op, bool rep, ulong mask)
    {
        if (rep && (cpu.Gpr(1) & mask) != 0)
        {
            cpu._rip = cpu.CurrentIp(ref op);
            cpu._exitBlock = X86Cpu.ExitJump;
        }
    }

    /// <summary>Writes rSI/rDI/rCX as the address size does: 32-bit zero-extends, 16-bit merges.</summary>
    private static void SetAddressRegister(X86Cpu cpu, int slot, ulong value, int addressSize) =>
        cpu.Gpr(slot) = addressSize switch
        {
            8 => value,
            4 => (uint)value,
            _ => (cpu.Gpr(slot) & ~0xFFFFUL) | (value & 0xFFFF),
        };

    // ---- Operand helpers --------------------------------------------------------------------

    /// <summary>A 16-bit r/m source (selector, machine status word).</summary>
    private static ushort ReadSelectorOperand(X86Cpu cpu, ref Op op) =>
        (op.Flags & OpFlags.Memory) != 0
            ? (ushort)Size16.Read(cpu, cpu.Linear(ref op, 2, MemoryAccess.Read))
            : (ushort)cpu.Gpr(op.Rm / 8);

    /// <summary>Stores a selector-like value: 16 bits to memory; zero-extended at the operand size (OpSize) to a register.</summary>
    private static void StoreSelectorOperand(X86Cpu cpu, ref Op op, ulong value)
    {
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            Size16.Write(cpu, cpu.Linear(ref op, 2, MemoryAccess.Write), (ushort)value);
            return;
        }

        WriteSized(cpu, op.Rm, op.OpSize, value);
    }

    private static void WriteSized(X86Cpu cpu, int offset, int size, ulong value)
    {
        switch (size)
        {
            case 2: Size16.WriteReg(cpu, offset, value); break;
            case 4: Size32.WriteReg(cpu, offset, value); break;
            default: Size64.WriteReg(cpu, offset, value); break;
        }
    }

    private static void SetZeroFlag(X86Cpu cpu, bool set) => cpu.UpdateStatusFlags(RflagsBits.Zero, set ? RflagsBits.Zero : 0);
}
