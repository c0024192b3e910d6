using SharpVisor.Emulator.Accelerator;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>The instruction bytes crash reports show: read through the guest's page tables without changing them.</summary>
public sealed class GuestCodeReaderTests : IDisposable
{
    private static readonly byte[] s_code = [0x0F, 0x0B, 0x90, 0xF4];
    private readonly GuestMemory _memory = GuestMemory.CreateRam(2 << 20);

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void WithoutPagingCsBasePlusRipIsThePhysicalAddress()
    {
        _memory.Write(0x1_2010, s_code);
        var state = new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable,
            Cs = new SegmentRegister { Selector = 0x1200, Base = 0x1_2000, Limit = 0xFFFF, Type = 0xB, Present = true, CodeOrData = true },
            Rip = 0x10,
        };

        byte[]? bytes = GuestCodeReader.Read(_memory, state, 39);

        Assert.NotNull(bytes);
        Assert.Equal(GuestCodeReader.MaxInstructionBytes, bytes.Length);
        Assert.Equal(s_code, bytes[..4]);
    }

    [Fact]
    public void InLongModeTheGuestsPageTablesTranslateAndStayUntouched()
    {
        LongModeTestGuest.Load(_memory, s_code);
        ulong pml4Before = _memory.Read<ulong>(LongModeTestGuest.Pml4Address);
        VcpuState state = LongModeTestGuest.Configure(new VcpuState());

        byte[]? bytes = GuestCodeReader.Read(_memory, state, 39);

        Assert.Equal(s_code, bytes![..4]);
        Assert.Equal(pml4Before, _memory.Read<ulong>(LongModeTestGuest.Pml4Address)); // no accessed bit set
    }

    [Fact]
    public void AnUnmappedRipGivesNoBytesAndAPageEndStopsTheRead()
    {
        LongModeTestGuest.Load(_memory, s_code);
        VcpuState state = LongModeTestGuest.Configure(new VcpuState(), rip: 0x7FFF_0000_0000);
        Assert.Null(GuestCodeReader.Read(_memory, state, 39));

        // The last 3 bytes of RAM: the next page is beyond memory.
        state = LongModeTestGuest.Configure(new VcpuState(), rip: (2 << 20) - 3);
        Assert.Equal(3, GuestCodeReader.Read(_memory, state, 39)!.Length);
    }
}
