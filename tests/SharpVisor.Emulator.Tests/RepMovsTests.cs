using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// REP MOVS between pages that share a software-TLB slot (linear addresses a multiple of the
/// TLB's reach apart, as a kernel's copy from a user buffer into a socket buffer can be): the
/// copy goes a page at a time, not two page walks per element.
/// </summary>
public sealed class RepMovsTests
{
    private static readonly ulong TlbReach = (ulong)new MmuOptions().TlbSlots << 12;

    // Room for a destination one TLB reach above the source.
    private static readonly ulong RamSize = TlbReach + (16 << 20);

    [Fact]
    public void CopyBetweenPagesSharingATlbSlotTranslatesEachPageOnce()
    {
        const ulong source = 0x10_0000;
        const int bytes = 64 << 10;
        const int pages = bytes >> 12;
        ulong destination = source + TlbReach;
        using var t = new TestCpu(RamSize);
        byte[] data = Pattern(bytes);
        t.Memory.Write(source, data);
        t.EnterLongMode();
        t.Load(64, a =>
        {
            a.mov(rsi, source);
            a.mov(rdi, destination);
            a.mov(ecx, bytes / 8);
            a.rep.movsq();
            a.hlt();
        });
        long before = t.Cpu.Mmu.Counters.Translations;

        t.RunToHalt();

        Assert.Equal(data, Read(t, destination, bytes));
        Assert.Equal(0UL, t.Cpu.GetRegister(1));
        Assert.Equal(source + bytes, t.Cpu.GetRegister(6));
        Assert.Equal(destination + bytes, t.Cpu.GetRegister(7));
        // One read and one write translation per page pair, a few for the code and HLT; an element
        // at a time would be two per 8 bytes (16,384 here).
        Assert.InRange(t.Cpu.Mmu.Counters.Translations - before, 2 * pages, (2 * pages) + 8);
    }

    [Fact]
    public void AFaultOnTheNextDestinationPageLeavesTheRegistersAtTheFirstElementNotCopied()
    {
        // Linear GiB 1 maps its last 2 MiB to physical 2 MiB (a page directory at 8 MiB); GiB 2 is
        // not present. The destination's first page is the last of GiB 1, in the source's TLB slot.
        const ulong directory = 0x80_0000;
        const ulong destination = 0x7FFF_F000;
        const ulong destinationPhysical = 0x3F_F000;
        ulong source = destination & (TlbReach - 1);
        using var t = new TestCpu(RamSize);
        ulong pdpt = t.IdentityPml4 + 0x1000;
        t.Memory.Write(pdpt + 8, directory | 0x7);
        t.Memory.Write(pdpt + 16, 0UL);
        t.Memory.Write(directory + (511 * 8), 0x20_0000UL | 0x87);
        byte[] data = Pattern(0x2000);
        t.Memory.Write(source, data);
        t.EnterLongMode();
        t.Load(64, a =>
        {
            a.mov(rsi, source);
            a.mov(rdi, destination);
            a.mov(ecx, 0x2000 / 8);
            a.rep.movsq();
            a.hlt();
        });

        CpuRunResult result = t.Cpu.Run();

        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.PageFault, result.Exception!.Vector);
        Assert.Equal(destination + 0x1000, t.Cpu.GetState().Cr2);
        Assert.Equal(data.AsSpan(0, 0x1000).ToArray(), Read(t, destinationPhysical, 0x1000));
        Assert.Equal(0x1000UL / 8, t.Cpu.GetRegister(1));
        Assert.Equal(source + 0x1000, t.Cpu.GetRegister(6));
        Assert.Equal(destination + 0x1000, t.Cpu.GetRegister(7));
    }

    private static byte[] Read(TestCpu t, ulong address, int length)
    {
        byte[] data = new byte[length];
        t.Memory.Read(address, data);
        return data;
    }

    private static byte[] Pattern(int length)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)((i * 7) + (i >> 8));
        }

        return data;
    }
}
