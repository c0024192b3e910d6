using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

/// <summary>Guest memory, hand-built page tables and an MMU of one mode over them.</summary>
internal sealed class MmuHarness : IDisposable
{
    public const ulong Cr4Pse = 1UL << 4;
    public const ulong Cr4Smep = 1UL << 20;
    public const ulong Cr4Smap = 1UL << 21;

    private IMmu? _mmu;

    public MmuHarness(MmuMode mode, PagingMode paging = PagingMode.FourLevel, GuestMemory? memory = null, MmuOptions? options = null)
    {
        ModeUnderTest = mode;
        Options = options;
        Memory = memory ?? GuestMemory.CreateRam(32 << 20);
        Tables = new PageTables(Memory, paging);
    }

    public MmuMode ModeUnderTest { get; }

    public MmuOptions? Options { get; }

    public GuestMemory Memory { get; }

    public PageTables Tables { get; }

    public SecondLevelTable? SecondLevel { get; private set; }

    /// <summary>The MMU, created on first use (after the test laid out guest memory).</summary>
    public IMmu Mmu => _mmu ??= CreateMmu();

    public ulong Cr0 { get; private set; }

    public ulong Cr4 { get; private set; }

    public ulong Efer { get; private set; }

    public static TheoryData<MmuMode> Modes => new() { MmuMode.Shadow, MmuMode.Nested };

    /// <summary>Turns paging on in the tables' mode with CR0.WP and (for PAE/4-level) EFER.NXE unless told otherwise.</summary>
    public void EnablePaging(bool wp = true, bool nxe = true, ulong cr4 = 0)
    {
        Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging | (wp ? VcpuState.Cr0WriteProtect : 0);
        Cr4 = cr4 | Tables.Mode switch
        {
            PagingMode.Legacy32 => Cr4Pse,
            _ => VcpuState.Cr4Pae,
        };
        Efer = Tables.Mode switch
        {
            PagingMode.FourLevel => VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive,
            _ => 0,
        };
        if (nxe && Tables.Mode != PagingMode.Legacy32)
        {
            Efer |= VcpuState.EferNoExecute;
        }

        Assert.True(Mmu.LoadControlRegisters(Cr0, Tables.Root, Cr4, Efer));
        Assert.Equal(Tables.Mode, Mmu.PagingMode);
    }

    public Translation Translate(ulong linear, PageAccess access = PageAccess.Read) => Mmu.Translate(linear, access);

    /// <summary>A store as the CPU makes it: translate for write, store, report tracked stores.</summary>
    public Translation Store(ulong linear, ulong value, int size = 8, PageAccess access = PageAccess.Write)
    {
        Translation t = Mmu.Translate(linear, access | PageAccess.Write);
        if (t.IsRam)
        {
            unsafe
            {
                if (size == 4)
                {
                    *(uint*)t.HostAddress = (uint)value;
                }
                else
                {
                    *(ulong*)t.HostAddress = value;
                }
            }

            if (t.WriteTracked)
            {
                Mmu.OnGuestPhysicalWrite(t.PhysicalAddress, size);
            }
        }

        return t;
    }

    public void Dispose()
    {
        SecondLevel?.Dispose();
        Memory.Dispose();
    }

    private IMmu CreateMmu()
    {
        if (ModeUnderTest == MmuMode.Nested)
        {
            SecondLevel = SecondLevelTable.Build(Memory);
        }

        return MmuFactory.Create(ModeUnderTest, Memory, SecondLevel, Options);
    }
}
