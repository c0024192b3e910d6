using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>Real mode, 16/32-bit protected mode and long mode, and the far transfers between them.</summary>
public sealed class ModeSwitchTests
{
    private const ushort RealCode = 0x7000;
    private const ulong ProtectedCode = 0x7200;
    private const ulong LongCode = 0x7400;
    private const ulong GdtPointer = 0x6F00;

    [Fact]
    public void RealToProtectedToLongModeWithFarJumpsAndLret()
    {
        using var m = new SystemMachine();
        m.Memory.Write(GdtPointer, (ushort)0x4F);
        m.Memory.Write(GdtPointer + 2, (uint)SystemMachine.GdtAddress);
        m.Load(RealCode, a =>
        {
            a.cli();
            a.lgdt(__fword_ptr[(uint)GdtPointer]);
            a.mov(eax, cr0);
            a.or(eax, 1);
            a.mov(cr0, eax);
            a.jmp(SystemMachine.KernelCode32, (uint)ProtectedCode);
        }, bitness: 16);
        m.Load(ProtectedCode, a =>
        {
            a.mov(ax, SystemMachine.KernelData);
            a.mov(ds, ax);
            a.mov(es, ax);
            a.mov(ss, ax);
            a.mov(esp, (uint)SystemMachine.KernelStackTop);
            a.mov(eax, cr4);
            a.or(eax, 1 << 5);                  // PAE
            a.mov(cr4, eax);
            a.mov(eax, (uint)SystemMachine.Pml4Address);
            a.mov(cr3, eax);
            a.mov(ecx, 0xC000_0080);
            a.rdmsr();
            a.or(eax, (1 << 8) | (1 << 11));    // LME, NXE
            a.wrmsr();
            a.mov(eax, cr0);
            a.or(eax, unchecked((int)0x8000_0000)); // paging on: long mode becomes active
            a.mov(cr0, eax);
            a.mov(esi, 0x32);
            a.jmp(SystemMachine.KernelCode64, (uint)LongCode);
        }, bitness: 32);
        m.Load(LongCode, a =>
        {
            Label reloaded = a.CreateLabel();
            a.mov(rax, 0x1122_3344_5566_7788);
            a.push(SystemMachine.KernelCode64);  // the LRETQ way Linux reloads CS
            a.lea(rbx, __[reloaded]);
            a.push(rbx);
            a.db(0x48, 0xCB);                     // retfq
            a.Label(ref reloaded);
            a.mov(rdx, cs);
            a.hlt();
        });
        m.EnterRealMode(RealCode);
        Assert.Equal(CpuMode.Real, m.Cpu.Mode);
        m.RunTo(ProtectedCode);
        Assert.Equal(CpuMode.Protected32, m.Cpu.Mode);
        m.RunTo(LongCode);
        Assert.Equal(CpuMode.Long64, m.Cpu.Mode);
        Assert.Equal(0x32UL, m.Cpu.GetRegister(6));
        Assert.NotEqual(0UL, m.Cpu.Efer & (1UL << 10)); // LMA
        m.RunToHalt();
        Assert.Equal(0x1122_3344_5566_7788UL, m.Cpu.GetRegister(0));
        Assert.Equal((ulong)SystemMachine.KernelCode64, m.Cpu.GetRegister(2));
        Assert.Equal(SystemMachine.KernelStackTop, m.Cpu.GetRegister(4));
    }

    [Fact]
    public void LongModeCannotBeActivatedWithoutPae()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers32();
        m.Load(ProtectedCode, a =>
        {
            a.mov(ecx, 0xC000_0080);
            a.rdmsr();
            a.or(eax, 1 << 8);
            a.wrmsr();
            a.mov(eax, cr0);
            a.or(eax, unchecked((int)0x8000_0000));
            a.mov(cr0, eax);
            a.hlt();
        }, bitness: 32);
        m.EnterProtectedMode32(ProtectedCode);
        m.RunToHandler32(13);
        Assert.Equal(0UL, m.Cpu.Cr0 & 0x8000_0000);
    }

    [Fact]
    public void FarCallAndFarReturnIn64BitMode()
    {
        using var m = new SystemMachine();
        ulong pointer = 0x18_E000;
        ulong target = 0x18_D000;
        m.Memory.Write(pointer, target);
        m.Memory.Write(pointer + 8, SystemMachine.KernelCode64);
        m.Load(target, a =>
        {
            a.mov(r8, __qword_ptr[rsp]);       // return RIP
            a.mov(r9, __qword_ptr[rsp + 8]);   // return CS
            a.db(0x48, 0xCA, 0x08, 0x00);      // retfq 8
        });
        ulong end = m.Load(SystemMachine.KernelCode, a =>
        {
            a.push(0x55);                       // released by RETF 8
            a.mov(rbx, pointer);
            a.db(0x48, 0xFF, 0x1B);             // call far qword [rbx] (m16:64)
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(end - 1, m.Cpu.GetRegister(8));
        Assert.Equal((ulong)SystemMachine.KernelCode64, m.Cpu.GetRegister(9));
        Assert.Equal(SystemMachine.KernelStackTop, m.Cpu.GetRegister(4));
    }

    [Fact]
    public void RealModeSoftwareInterruptGoesThroughTheIvt()
    {
        using var m = new SystemMachine();
        m.Memory.Write(0x21 * 4, (ushort)0x0010);   // offset
        m.Memory.Write((0x21 * 4) + 2, (ushort)0x0600); // segment: handler at 0x6010
        m.Load(0x6010, a =>
        {
            a.mov(bx, 0x55);
            a.pushf();
            a.pop(cx);
            a.iret();
        }, bitness: 16);
        m.Load(RealCode, a =>
        {
            a.sti();
            a.@int(0x21);
            a.pushf();
            a.pop(dx);
            a.hlt();
        }, bitness: 16);
        m.EnterRealMode(RealCode, sp: 0x7000);
        m.RunToHalt();
        Assert.Equal(0x55UL, m.Cpu.GetRegister(3) & 0xFFFF);
        Assert.Equal(0UL, m.Cpu.GetRegister(1) & 0x200);      // IF clear in the handler
        Assert.Equal(0x200UL, m.Cpu.GetRegister(2) & 0x200);  // restored by IRET
        Assert.Equal(0x7000UL, m.Cpu.GetRegister(4) & 0xFFFF);
    }

    [Fact]
    public void ProtectedModeInterruptFromRing3SwitchesToTheTssStack()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers32();
        m.SetGate32(0x80, SystemMachine.HaltHandler(0x80), dpl: 3);
        ulong userStack = 0x28_0000;
        ulong end = m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(eax, 7);
            a.@int(0x80);
            a.hlt();
        }, bitness: 32);
        m.Load(ProtectedCode, a =>
        {
            // IRETD to ring 3: EIP, CS, EFLAGS, ESP, SS.
            a.push(SystemMachine.UserData);
            a.push((uint)userStack);
            a.push(0x202);
            a.push(SystemMachine.UserCode32);
            a.push((uint)SystemMachine.UserCode);
            a.iretd();
        }, bitness: 32);
        m.EnterProtectedMode32(ProtectedCode);
        m.RunToHandler32(0x80);
        Assert.Equal(0, m.Cpu.CurrentPrivilegeLevel);
        Assert.Equal((ulong)SystemMachine.KernelData, (ulong)m.Cpu.GetSegmentSelector(2));
        uint esp = (uint)m.Cpu.GetRegister(4);
        Assert.Equal(SystemMachine.Tss32StackTop - 20, esp);
        Assert.Equal((uint)(end - 1), m.Memory.Read<uint>(esp));                 // EIP after INT
        Assert.Equal((uint)SystemMachine.UserCode32, m.Memory.Read<uint>(esp + 4));
        Assert.Equal(0x202U, m.Memory.Read<uint>(esp + 8) & 0x202);
        Assert.Equal((uint)userStack, m.Memory.Read<uint>(esp + 12));
        Assert.Equal((uint)SystemMachine.UserData, m.Memory.Read<uint>(esp + 16));
        Assert.Equal(0UL, m.Cpu.Rflags & 0x200); // interrupt gate
    }

    [Fact]
    public void ProtectedModeFaultWithErrorCodeOnTheSameStack()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers32();
        m.Load(ProtectedCode, a =>
        {
            a.mov(ax, 0x58);   // execute-only code segment: not loadable into DS
            a.mov(ds, ax);
            a.hlt();
        }, bitness: 32);
        m.SetGdtEntry(11, SystemMachine.Descriptor(0x8, 0));
        m.EnterProtectedMode32(ProtectedCode);
        m.RunToHandler32(13);
        uint esp = (uint)m.Cpu.GetRegister(4);
        Assert.Equal((uint)SystemMachine.KernelStackTop - 16, esp);
        Assert.Equal(0x58U, m.Memory.Read<uint>(esp));                   // error code: the selector
        Assert.Equal((uint)ProtectedCode + 4, m.Memory.Read<uint>(esp + 4)); // the faulting MOV
        Assert.Equal((uint)SystemMachine.KernelCode32, m.Memory.Read<uint>(esp + 8));
    }
}
