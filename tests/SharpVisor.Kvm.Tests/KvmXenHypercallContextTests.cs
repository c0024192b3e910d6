using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;
using SharpVisor.Xen;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// Unit level, no KVM: the KVM_EXIT_XEN record and a fake register file (<see cref="FakeKvmXenVcpu"/>)
/// mapped onto the Xen layer's <see cref="IHypercallContext"/>. These prove the adapter's argument,
/// result and memory mapping against the ABI — not KVM's behaviour, which only a host with
/// KVM_CAP_XEN_HVM can show (<see cref="KvmXenGuestTests"/>).
/// </summary>
public sealed class KvmXenHypercallContextTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.CreateRam(2 << 20);

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void LongModeArgumentsComeFromTheExitInRdiRsiRdxR10R8R9Order()
    {
        var vcpu = new FakeKvmXenVcpu();
        vcpu.Registers[3] = 0xB0B; // RBX: not an argument in 64-bit mode, read from the vCPU
        var context = new KvmXenHypercallContext(2, Exit(longMode: true, cpl: 0, input: 17, 11, 22, 33, 44, 55, 66), vcpu, _memory);

        Assert.True(context.LongMode);
        Assert.Equal((2, 0), (context.VcpuId, context.Cpl));
        Assert.Equal(17UL, context.GetRegister(0));
        Assert.Equal(
            [11UL, 22, 33, 44, 55, 66],
            new[] { 7, 6, 2, 10, 8, 9 }.Select(context.GetRegister).ToArray());
        Assert.Empty(vcpu.RegistersRead);
        Assert.Equal(0xB0BUL, context.GetRegister(3));
        Assert.Equal([3], vcpu.RegistersRead);
    }

    [Fact]
    public void CompatModeArgumentsComeFromTheExitInEbxEcxEdxEsiEdiEbpOrder()
    {
        var vcpu = new FakeKvmXenVcpu();
        var context = new KvmXenHypercallContext(0, Exit(longMode: false, cpl: 0, input: 32, 1, 2, 3, 4, 5, 6), vcpu, _memory);

        Assert.False(context.LongMode);
        Assert.Equal(
            [1UL, 2, 3, 4, 5, 6],
            new[] { 3, 1, 2, 6, 7, 5 }.Select(context.GetRegister).ToArray());
        Assert.Empty(vcpu.RegistersRead);
    }

    [Fact]
    public void RaxIsTheResultAndOtherRegisterWritesGoToTheVcpu()
    {
        var vcpu = new FakeKvmXenVcpu();
        var context = new KvmXenHypercallContext(0, Exit(longMode: true, cpl: 3, input: 29, 7, 8, 0, 0, 0, 0), vcpu, _memory);
        Assert.Equal(3, context.Cpl);
        Assert.Equal(29UL, context.Result);

        context.SetRegister(0, unchecked((ulong)-38));
        context.SetRegister(6, 0x1234); // RSI: an argument register, changed in the vCPU and as read back
        context.SetRegister(12, 0x5678);
        context.Halt();

        Assert.Equal(unchecked((ulong)-38), context.Result);
        Assert.Equal(0UL, vcpu.Registers[0]);
        Assert.Equal((0x1234UL, 0x5678UL), (vcpu.Registers[6], vcpu.Registers[12]));
        Assert.Equal(0x1234UL, context.GetRegister(6));
        Assert.True(vcpu.Halted);
    }

    [Fact]
    public void VirtualBuffersAreTranslatedPageByPageAndReachOnlyRam()
    {
        var vcpu = new FakeKvmXenVcpu();
        vcpu.Pages[0xFFFF_8000_0000_0000] = (0x5000, true);
        vcpu.Pages[0xFFFF_8000_0000_1000] = (0x3000, true);   // not contiguous physically
        vcpu.Pages[0xFFFF_8000_0000_2000] = (0x7000, false);  // read-only
        vcpu.Pages[0xFFFF_8000_0000_3000] = (0x1_0000_0000, true); // outside RAM
        _memory.Write(0x5FFC, [1, 2, 3, 4]);
        _memory.Write(0x3000, [5, 6, 7, 8]);
        var context = new KvmXenHypercallContext(0, Exit(longMode: true, cpl: 0, input: 0, 0, 0, 0, 0, 0, 0), vcpu, _memory);

        byte[] read = new byte[8];
        Assert.True(context.TryReadVirtual(0xFFFF_8000_0000_0FFC, read));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, read);

        Assert.True(context.TryWriteVirtual(0xFFFF_8000_0000_0FFE, [9, 9, 9, 9]));
        Assert.Equal(new byte[] { 1, 2, 9, 9, 9, 9, 7, 8 }, Read(0x5FFC, 4).Concat(Read(0x3000, 4)).ToArray());

        // A write that reaches a read-only page, or any access reaching a page outside RAM or an
        // unmapped one, fails whole: nothing of it is written.
        Assert.False(context.TryWriteVirtual(0xFFFF_8000_0000_1FFE, [0xEE, 0xEE, 0xEE, 0xEE]));
        Assert.Equal(new byte[] { 9, 9, 7, 8 }, Read(0x3000, 4));
        Assert.True(context.TryReadVirtual(0xFFFF_8000_0000_2000, new byte[4]));
        Assert.False(context.TryReadVirtual(0xFFFF_8000_0000_3000, new byte[4]));
        Assert.False(context.TryReadVirtual(0xFFFF_8000_0000_4000, new byte[4]));
    }

    [Fact]
    public void CompatModeAddressesWrapAt4GiB()
    {
        var vcpu = new FakeKvmXenVcpu();
        vcpu.Pages[0xFFFF_F000] = (0x2000, true);
        vcpu.Pages[0] = (0x4000, true);
        _memory.Write(0x2FFE, [1, 2]);
        _memory.Write(0x4000, [3, 4]);
        var context = new KvmXenHypercallContext(0, Exit(longMode: false, cpl: 0, input: 0, 0, 0, 0, 0, 0, 0), vcpu, _memory);

        byte[] read = new byte[4];
        Assert.True(context.TryReadVirtual(0xFFFF_FFFE, read));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, read);
    }

    /// <summary>
    /// The adapter feeds the Xen layer itself (one hypercall layer for both accelerators): XENVER_version
    /// and a bad argument pointer answered by a real <see cref="XenDomain"/> through the exit record.
    /// </summary>
    [Fact]
    public void TheXenLayerAnswersThroughTheAdapter()
    {
        using var domain = new XenDomain(_memory, new XenDomainOptions { VcpuCount = 1 });
        domain.Connect(new FakeXenHost());
        var vcpu = new FakeKvmXenVcpu();

        var version = new KvmXenHypercallContext(0, Exit(longMode: true, cpl: 0, input: (ulong)HypercallOp.XenVersion, 0, 0, 0, 0, 0, 0), vcpu, _memory);
        domain.Hypercall(version);
        Assert.Equal((4UL << 16) | 17, version.Result);

        // XENVER_extraversion into an address the vCPU cannot translate: -EFAULT (14), no exception.
        var fault = new KvmXenHypercallContext(0, Exit(longMode: true, cpl: 0, input: (ulong)HypercallOp.XenVersion, 1, 0xDEAD_0000, 0, 0, 0, 0), vcpu, _memory);
        domain.Hypercall(fault);
        Assert.Equal(unchecked((ulong)-14), fault.Result);

        // From user mode: -EPERM (1), and in 32-bit mode the result is 32 bits wide.
        var user = new KvmXenHypercallContext(0, Exit(longMode: false, cpl: 3, input: (ulong)HypercallOp.XenVersion, 0, 0, 0, 0, 0, 0), vcpu, _memory);
        domain.Hypercall(user);
        Assert.Equal(unchecked((uint)-1), user.Result);
    }

    private byte[] Read(ulong address, int length)
    {
        byte[] bytes = new byte[length];
        _memory.Read(address, bytes);
        return bytes;
    }

    private static unsafe KvmRunXen Exit(bool longMode, uint cpl, ulong input, params ulong[] arguments)
    {
        var exit = new KvmRunXen { Type = KvmRunXen.TypeHcall, LongMode = longMode ? 1u : 0u, Cpl = cpl, Input = input };
        for (int i = 0; i < arguments.Length; i++)
        {
            exit.Params[i] = arguments[i];
        }

        return exit;
    }

    private sealed class FakeXenHost : IHypervisorHost
    {
        public HypercallInstruction Instruction => HypercallInstruction.Vmcall;

        public long TscFrequencyHz => 1_000_000_000;

        public SharpVisor.Machine.MachineControl Control { get; } = new();

        public ulong ReadTsc() => 0;

        public void WakeVcpu(int vcpuId)
        {
        }

        public void StartVcpu(int vcpuId, SharpVisor.Machine.VcpuState? state) => throw new NotSupportedException();

        public void StopVcpu(int vcpuId) => throw new NotSupportedException();

        public void FlushVcpuTlb(int vcpuId, int callerVcpuId) => throw new NotSupportedException();
    }
}
