using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>Paging as the CPU sees it, in both MMU modes: faults, recovery, invalidation, code through aliases.</summary>
public sealed class PagingTests
{
    private const ulong HandlerAddress = 0x18_8000;
    private const ulong Counter = 0x18_F000;

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void PageFaultHandlerMapsThePageAndTheStoreIsRestarted(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        ulong target = SystemMachine.UserDataArea + 0x7010;
        ulong page = target & ~0xFFFUL;
        m.UnmapPage(page);

        // The handler maps the faulting page (user, writable), counts, drops the error code and returns.
        m.Load(HandlerAddress, a =>
        {
            a.push(rax);
            a.push(rbx);
            a.mov(rax, cr2);
            a.shr(rax, 12);
            a.mov(rbx, rax);
            a.shl(rax, 12);
            a.or(rax, 7);
            a.shl(rbx, 3);
            a.add(rbx, (int)SystemMachine.PtAddress);
            a.mov(__qword_ptr[rbx], rax);
            a.mov(rax, cr2);
            a.invlpg(__byte_ptr[rax]);
            a.mov(rax, Counter);
            a.inc(__qword_ptr[rax]);
            a.pop(rbx);
            a.pop(rax);
            a.add(rsp, 8);
            a.iretq();
        });
        m.SetGate(14, HandlerAddress);
        m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(rdi, target);
            a.mov(eax, 0x5A5A);
            a.mov(__dword_ptr[rdi], eax);
            a.mov(ecx, __dword_ptr[rdi]);
            a.ud2();
        });
        m.EnterUserMode();
        m.RunToHandler(6);
        Assert.Equal(1UL, m.Memory.Read<ulong>(Counter));
        Assert.Equal(0x5A5AU, m.Memory.Read<uint>(target));
        Assert.Equal(0x5A5AUL, m.Cpu.GetRegister(1));
        Assert.Equal(target, m.Cpu.Cr2);
        Assert.Equal(0, m.Cpu.CurrentPrivilegeLevel); // in the #UD handler
    }

    public static TheoryData<MmuMode, string, ulong> ProtectionCases => new()
    {
        { MmuMode.Shadow, "user write to read-only page", 0x7 },
        { MmuMode.Nested, "user write to read-only page", 0x7 },
        { MmuMode.Shadow, "user read of supervisor page", 0x5 },
        { MmuMode.Nested, "user read of supervisor page", 0x5 },
        { MmuMode.Shadow, "user fetch from no-execute page", 0x15 },
        { MmuMode.Nested, "user fetch from no-execute page", 0x15 },
        { MmuMode.Shadow, "supervisor write to read-only page (CR0.WP)", 0x3 },
        { MmuMode.Nested, "supervisor write to read-only page (CR0.WP)", 0x3 },
        { MmuMode.Shadow, "reserved bit in a PTE", 0xD },
        { MmuMode.Nested, "reserved bit in a PTE", 0xD },
    };

    [Theory]
    [MemberData(nameof(ProtectionCases))]
    public void ProtectionFaultsHaveTheExactErrorCode(MmuMode mode, string what, ulong errorCode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        ulong page = SystemMachine.UserDataArea + 0x2000;
        bool user = !what.StartsWith("supervisor", StringComparison.Ordinal);
        switch (what)
        {
            case "user write to read-only page":
            case "supervisor write to read-only page (CR0.WP)":
                m.MapPage(page, page, user: true, writable: false);
                break;
            case "user read of supervisor page":
                m.MapPage(page, page, user: false);
                break;
            case "user fetch from no-execute page":
                m.MapPage(page, page, user: true, executable: false);
                break;
            default:
                m.Memory.Write(m.PteAddress(page), page | 7 | (1UL << 51)); // above MAXPHYADDR 40
                break;
        }

        ulong code = what.Contains("fetch", StringComparison.Ordinal) ? page : SystemMachine.UserCode;
        if (what.Contains("fetch", StringComparison.Ordinal))
        {
            m.Memory.Write(page, (byte)0x90);
        }
        else
        {
            m.Load(code, a =>
            {
                a.mov(rdi, page + 0x18);
                if (what.Contains("write", StringComparison.Ordinal))
                {
                    a.mov(__qword_ptr[rdi], rax);
                }
                else
                {
                    a.mov(rax, __qword_ptr[rdi]);
                }

                a.hlt();
            });
        }

        if (user)
        {
            m.EnterUserMode(code);
        }
        else
        {
            m.EnterLongMode(code);
        }

        m.RunToHandler(14);
        Assert.Equal(errorCode, m.StackSlot(0));
        Assert.Equal(what.Contains("fetch", StringComparison.Ordinal) ? page : page + 0x18, m.Cpu.Cr2);
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void InvlpgAndCr3LoadsMakeNewMappingsVisible(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        ulong window = SystemMachine.UserDataArea;
        ulong frameA = SystemMachine.UserDataArea + 0x1_0000;
        ulong frameB = SystemMachine.UserDataArea + 0x1_1000;
        ulong frameC = SystemMachine.UserDataArea + 0x1_2000;
        m.Memory.Write(frameA, 0xAAUL);
        m.Memory.Write(frameB, 0xBBUL);
        m.Memory.Write(frameC, 0xCCUL);
        m.MapPage(window, frameA, user: false);

        // A second address space: its own PML4 and PDPT/PD/PT copies, where the window maps frame C.
        const ulong pml4B = 0x3A_0000;
        m.Memory.Write(pml4B, (SystemMachine.PdptAddress + 0x1_0000) | 7);
        m.Memory.Write(SystemMachine.PdptAddress + 0x1_0000, (SystemMachine.PdAddress + 0x1_0000) | 7);
        m.Memory.Write(SystemMachine.PdAddress + 0x1_0000, SystemMachine.PtAddress | 7);
        m.Memory.Write(SystemMachine.PdAddress + 0x1_0008, (SystemMachine.PtAddress + 0x1_1000) | 7);
        for (ulong i = 0; i < 512; i++)
        {
            ulong linear = (2UL << 20) + (i << 12);
            m.Memory.Write(SystemMachine.PtAddress + 0x1_1000 + (i * 8), linear == window ? frameC | 3 : linear | 3);
        }

        ulong pte = m.PteAddress(window);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rdi, window);
            a.mov(r8, __qword_ptr[rdi]);                 // 0xAA
            a.mov(rax, frameB | 3);
            a.mov(rbx, pte);
            a.mov(__qword_ptr[rbx], rax);                // remap to frame B ...
            a.invlpg(__byte_ptr[rdi]);                   // ... and invalidate
            a.mov(r9, __qword_ptr[rdi]);                 // 0xBB
            a.mov(rax, pml4B);
            a.mov(cr3, rax);                             // the other address space
            a.mov(r10, __qword_ptr[rdi]);                // 0xCC
            a.mov(rax, SystemMachine.Pml4Address);
            a.mov(cr3, rax);
            a.mov(r11, __qword_ptr[rdi]);                // 0xBB again
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(0xAAUL, m.Cpu.GetRegister(8));
        Assert.Equal(0xBBUL, m.Cpu.GetRegister(9));
        Assert.Equal(0xCCUL, m.Cpu.GetRegister(10));
        Assert.Equal(0xBBUL, m.Cpu.GetRegister(11));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void CodeRemappedWithInvlpgRunsTheNewFrame(MmuMode mode)
    {
        // INVLPG drops the block lookups only when some were made through the page: an
        // unrelated page keeps them, the code's page (or the second page of an instruction
        // straddling two) drops them, so remapped code runs from its new frame.
        using var m = new SystemMachine(mode);
        const ulong page = 0x3E_0000;
        const ulong frame = 0x1D_0000;
        const ulong secondFrame = 0x1D_1000;
        const ulong otherFrame = 0x1D_2000;
        const ulong otherSecondFrame = 0x1D_3000;
        m.MapPage(page, frame, user: false);
        m.MapPage(page + 0x1000, secondFrame, user: false);
        m.Load(frame + 0x100, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });
        m.Load(otherFrame + 0x100, a =>
        {
            a.mov(eax, 3);
            a.ret();
        });
        m.Load(frame + 0x200, a =>
        {
            a.mov(eax, 0x11);
            a.ret();
        });
        m.Load(frame + 0x300, a =>
        {
            a.mov(eax, 0x22);
            a.ret();
        });

        // JMP rel32 at the page's last byte: its displacement lies wholly in the second page, and
        // nothing runs from there, so only the straddling block ties the second page to the lookups.
        m.Memory.Write(frame + 0xFFF, (byte)0xE9);
        m.Memory.Write(secondFrame, unchecked((uint)(0x200 - 0x1004)));
        m.Memory.Write(otherSecondFrame, unchecked((uint)(0x300 - 0x1004)));
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rbx, page + 0x100);
            a.mov(rsi, page + 0xFFF);
            a.call(rbx);
            a.mov(r8, rax);                                      // 1
            a.call(rsi);
            a.mov(r9, rax);                                      // 0x11
            a.mov(rdi, SystemMachine.UserDataArea);
            a.invlpg(__byte_ptr[rdi]);                           // an unrelated page
            a.call(rbx);
            a.mov(r10, rax);                                     // 1
            a.call(rsi);
            a.mov(r11, rax);                                     // 0x11
            a.mov(rdi, m.PteAddress(page + 0x1000));
            a.mov(rax, otherSecondFrame | 3);
            a.mov(__qword_ptr[rdi], rax);
            a.mov(rdi, page + 0x1000);
            a.invlpg(__byte_ptr[rdi]);                           // the straddling JMP's second page
            a.call(rsi);
            a.mov(r12, rax);                                     // 0x22
            a.mov(rdi, m.PteAddress(page));
            a.mov(rax, otherFrame | 3);
            a.mov(__qword_ptr[rdi], rax);
            a.mov(rdi, page);
            a.invlpg(__byte_ptr[rdi]);                           // the function's page
            a.call(rbx);
            a.mov(r13, rax);                                     // 3
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(1UL, m.Cpu.GetRegister(8));
        Assert.Equal(0x11UL, m.Cpu.GetRegister(9));
        Assert.Equal(1UL, m.Cpu.GetRegister(10));
        Assert.Equal(0x11UL, m.Cpu.GetRegister(11));
        Assert.Equal(0x22UL, m.Cpu.GetRegister(12));
        Assert.Equal(3UL, m.Cpu.GetRegister(13));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void CodeLookupsAcrossCr3LoadsFollowTheMappings(MmuMode mode)
    {
        // A CR3 load keeps the block lookups made through global pages only (as the TLB keeps
        // their translations): code on a non-global page runs the new address space's frame; a
        // global page's lookup still goes with an INVLPG of it, and with a CR4.PGE toggle.
        using var m = new SystemMachine(mode);
        const ulong page = 0x3E_0000;        // not global: frame A here, frame B in the other space
        const ulong globalPage = 0x3E_2000;  // global: frame C in both, then D, then E
        const ulong frameA = 0x1D_0000;
        const ulong frameB = 0x1D_1000;
        const ulong frameC = 0x1D_2000;
        const ulong frameD = 0x1D_3000;
        const ulong frameE = 0x1D_4000;
        const ulong global = 1UL << 8;
        m.MapPage(page, frameA, user: false);
        m.Memory.Write(m.PteAddress(globalPage), frameC | global | 3);
        (ulong Frame, uint Value)[] functions = [(frameA, 1), (frameB, 2), (frameC, 5), (frameD, 6), (frameE, 7)];
        foreach ((ulong frame, uint value) in functions)
        {
            m.Load(frame + 0x100, a =>
            {
                a.mov(eax, value);
                a.ret();
            });
        }

        // The other address space: its own PML4, PDPT, PD and the 2-4 MiB page table, where the
        // non-global page maps frame B.
        const ulong pml4B = 0x3A_0000;
        const ulong ptB = SystemMachine.PtAddress + 0x1_1000;
        m.Memory.Write(pml4B, (SystemMachine.PdptAddress + 0x1_0000) | 7);
        m.Memory.Write(SystemMachine.PdptAddress + 0x1_0000, (SystemMachine.PdAddress + 0x1_0000) | 7);
        m.Memory.Write(SystemMachine.PdAddress + 0x1_0000, SystemMachine.PtAddress | 7);
        m.Memory.Write(SystemMachine.PdAddress + 0x1_0008, ptB | 7);
        for (ulong i = 0; i < 512; i++)
        {
            ulong linear = (2UL << 20) + (i << 12);
            m.Memory.Write(ptB + (i * 8), m.Memory.Read<ulong>(m.PteAddress(linear)));
        }

        m.Memory.Write(ptB + (((page >> 12) & 511) * 8), frameB | 3);
        ulong globalPteB = ptB + (((globalPage >> 12) & 511) * 8);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rbx, page + 0x100);
            a.mov(rsi, globalPage + 0x100);
            a.call(rbx);
            a.mov(r8, rax);                                      // 1
            a.call(rsi);
            a.mov(r9, rax);                                      // 5
            a.mov(rax, pml4B);
            a.mov(cr3, rax);                                     // the other address space
            a.call(rbx);
            a.mov(r10, rax);                                     // 2: frame B
            a.call(rsi);
            a.mov(r11, rax);                                     // 5: the global lookup kept
            a.mov(rdi, globalPteB);
            a.mov(rax, frameD | global | 3);
            a.mov(__qword_ptr[rdi], rax);
            a.mov(rdi, globalPage);
            a.invlpg(__byte_ptr[rdi]);                           // the global page, remapped
            a.call(rsi);
            a.mov(r12, rax);                                     // 6: frame D
            a.mov(rdi, globalPteB);
            a.mov(rax, frameE | global | 3);
            a.mov(__qword_ptr[rdi], rax);
            a.mov(rax, cr4);
            a.btr(rax, 7);
            a.mov(cr4, rax);                                     // PGE off: global translations go ...
            a.bts(rax, 7);
            a.mov(cr4, rax);                                     // ... and PGE on again
            a.call(rsi);
            a.mov(r13, rax);                                     // 7: frame E
            a.mov(rax, SystemMachine.Pml4Address);
            a.mov(cr3, rax);
            a.call(rbx);
            a.mov(r14, rax);                                     // 1: frame A again
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(1UL, m.Cpu.GetRegister(8));
        Assert.Equal(5UL, m.Cpu.GetRegister(9));
        Assert.Equal(2UL, m.Cpu.GetRegister(10));
        Assert.Equal(5UL, m.Cpu.GetRegister(11));
        Assert.Equal(6UL, m.Cpu.GetRegister(12));
        Assert.Equal(7UL, m.Cpu.GetRegister(13));
        Assert.Equal(1UL, m.Cpu.GetRegister(14));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void CodePatchedThroughAnotherVirtualAliasRunsPatched(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        ulong function = 0x1C_0000;
        ulong alias = 0x3C_0000;                      // a second linear address of the same frame
        m.MapPage(alias, function, user: false);
        m.Load(function, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rbx, function);
            a.call(rbx);
            a.mov(r8, rax);                            // 1
            a.mov(rdi, alias + 1);
            a.mov(__dword_ptr[rdi], 2);                // patch the immediate through the alias
            a.call(rbx);
            a.mov(r9, rax);                            // 2
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(1UL, m.Cpu.GetRegister(8));
        Assert.Equal(2UL, m.Cpu.GetRegister(9));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void CodeThatPatchesItsOwnBlockRunsTheNewInstruction(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        ulong alias = 0x3D_0000;
        m.MapPage(alias, SystemMachine.KernelCode, user: false);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rdi, alias);                  // +0, 10 bytes
            a.mov(__byte_ptr[rdi + 16], 3);     // +10, 4 bytes: patches the immediate below
            a.nop();                            // +14
            a.mov(ecx, 1);                      // +15: B9 01 00 00 00
            a.hlt();
        });
        Assert.Equal(0xB9, m.Memory.Read<byte>(SystemMachine.KernelCode + 15));
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(3UL, m.Cpu.GetRegister(1));
    }
}
