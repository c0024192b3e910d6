using SharpVisor.Machine;

namespace SharpVisor.Machine.Tests;

/// <summary>KVM's hypercall ABI as KVM answers it (arch/x86/kvm/x86.c, kvm_emulate_hypercall).</summary>
public sealed class KvmHypercallsTests
{
    [Fact]
    public void UnknownCallsAreEnosysAndThePollCallSucceeds()
    {
        var handler = new KvmHypercalls(new RecordingTarget());
        Assert.Equal(unchecked((ulong)-1000L), Call(handler, 0x1234));
        Assert.Equal(0UL, Call(handler, KvmHypercalls.VapicPollIrq));
        Assert.Equal(unchecked((ulong)-95L), Call(handler, KvmHypercalls.ClockPairing));
    }

    [Fact]
    public void OnlyCpl0MayCall()
    {
        var target = new RecordingTarget();
        var handler = new KvmHypercalls(target);
        Assert.Equal(unchecked((ulong)-1L), Call(handler, KvmHypercalls.SendIpi, a0: 1, a3: 0x40, cpl: 3));
        Assert.Empty(target.Ipis);
    }

    [Fact]
    public void OutsideLongModeEveryValueIs32Bits()
    {
        var handler = new KvmHypercalls(new RecordingTarget());
        // The number's high half is ignored; the result is a 32-bit -1000.
        Assert.Equal(0UL, Call(handler, (1UL << 32) | KvmHypercalls.VapicPollIrq, longMode: false));
        Assert.Equal(0xFFFF_FC18UL, Call(handler, 0x1234, longMode: false));
    }

    [Fact]
    public void SendIpiDeliversToEachBitOfBothBitmapsAndCountsThem()
    {
        var target = new RecordingTarget { ExistingApicIds = [2, 3, 66] };
        var handler = new KvmHypercalls(target);
        // min = 2: low bits 0 and 1 are APIC ids 2 and 3, high bit 0 is 2 + 64 = 66; bit 5 (id 7) has no APIC.
        ulong count = Call(handler, KvmHypercalls.SendIpi, a0: 0b10_0011, a1: 1, a2: 2, a3: 0x4041);
        Assert.Equal(3UL, count);
        Assert.Equal([(2u, 0x4041UL), (3u, 0x4041UL), (7u, 0x4041UL), (66u, 0x4041UL)], target.Ipis);
    }

    [Fact]
    public void SendIpiRefusesLogicalDestinationsAndShorthands()
    {
        var target = new RecordingTarget { ExistingApicIds = [0] };
        var handler = new KvmHypercalls(target);
        Assert.Equal(unchecked((ulong)-22L), Call(handler, KvmHypercalls.SendIpi, a0: 1, a3: 0x800 | 0x40));
        Assert.Equal(unchecked((ulong)-22L), Call(handler, KvmHypercalls.SendIpi, a0: 1, a3: (3UL << 18) | 0x40));
        Assert.Empty(target.Ipis);
    }

    [Fact]
    public void KickCpuWakesTheNamedVcpuAndYieldsToIt()
    {
        var target = new RecordingTarget { ExistingApicIds = [1] };
        var handler = new KvmHypercalls(target);
        Assert.Equal(0UL, Call(handler, KvmHypercalls.KickCpu, a0: 0, a1: 1));
        Assert.Equal([1u], target.Kicks);
        Assert.Equal([1u], target.Yields);
        Assert.Equal(0UL, Call(handler, KvmHypercalls.SchedYield, a0: 5));
        Assert.Equal([1u, 5u], target.Yields);
    }

    private static ulong Call(KvmHypercalls handler, ulong number, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, int cpl = 0, bool longMode = true)
    {
        var registers = new HypercallRegisters { Rax = number, Rbx = a0, Rcx = a1, Rdx = a2, Rsi = a3, Cpl = cpl, LongMode = longMode };
        Assert.True(handler.Handle(0, ref registers));
        Assert.Equal(a0, registers.Rbx); // arguments are left as they were
        return registers.Rax;
    }

    private sealed class RecordingTarget : IKvmParavirtTarget
    {
        public uint[] ExistingApicIds { get; init; } = [];

        public List<(uint ApicId, ulong Icr)> Ipis { get; } = [];

        public List<uint> Kicks { get; } = [];

        public List<uint> Yields { get; } = [];

        public bool KickCpu(uint apicId)
        {
            Kicks.Add(apicId);
            return ExistingApicIds.Contains(apicId);
        }

        public bool SendIpi(uint apicId, ulong icr)
        {
            Ipis.Add((apicId, icr));
            return ExistingApicIds.Contains(apicId);
        }

        public void YieldTo(uint apicId) => Yields.Add(apicId);
    }
}
