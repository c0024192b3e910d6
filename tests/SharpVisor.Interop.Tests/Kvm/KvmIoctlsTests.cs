using SharpVisor.Interop.Kvm;

namespace SharpVisor.Interop.Tests.Kvm;

/// <summary>
/// Pins the computed ioctl numbers to the values &lt;linux/kvm.h&gt; produces on x86-64
/// (printed by a C program including the header). A wrong struct size changes the number.
/// </summary>
public class KvmIoctlsTests
{
    public static TheoryData<string, ulong, ulong> Numbers => new()
    {
        { "KVM_GET_API_VERSION", KvmIoctls.GetApiVersion, 0xAE00 },
        { "KVM_CREATE_VM", KvmIoctls.CreateVm, 0xAE01 },
        { "KVM_GET_MSR_INDEX_LIST", KvmIoctls.GetMsrIndexList, 0xC004AE02 },
        { "KVM_CHECK_EXTENSION", KvmIoctls.CheckExtension, 0xAE03 },
        { "KVM_ENABLE_CAP", KvmIoctls.EnableCap, 0x4068AEA3 },
        { "KVM_X86_SET_MSR_FILTER", KvmIoctls.SetMsrFilter, 0x4188AEC6 },
        { "KVM_GET_VCPU_MMAP_SIZE", KvmIoctls.GetVcpuMmapSize, 0xAE04 },
        { "KVM_GET_SUPPORTED_CPUID", KvmIoctls.GetSupportedCpuid, 0xC008AE05 },
        { "KVM_CREATE_VCPU", KvmIoctls.CreateVcpu, 0xAE41 },
        { "KVM_SET_USER_MEMORY_REGION", KvmIoctls.SetUserMemoryRegion, 0x4020AE46 },
        { "KVM_SET_TSS_ADDR", KvmIoctls.SetTssAddr, 0xAE47 },
        { "KVM_SET_IDENTITY_MAP_ADDR", KvmIoctls.SetIdentityMapAddr, 0x4008AE48 },
        { "KVM_CREATE_IRQCHIP", KvmIoctls.CreateIrqchip, 0xAE60 },
        { "KVM_IRQ_LINE", KvmIoctls.IrqLine, 0x4008AE61 },
        { "KVM_SET_GSI_ROUTING", KvmIoctls.SetGsiRouting, 0x4008AE6A },
        { "KVM_IRQFD", KvmIoctls.Irqfd, 0x4020AE76 },
        { "KVM_CREATE_PIT2", KvmIoctls.CreatePit2, 0x4040AE77 },
        { "KVM_IOEVENTFD", KvmIoctls.Ioeventfd, 0x4040AE79 },
        { "KVM_SIGNAL_MSI", KvmIoctls.SignalMsi, 0x4020AEA5 },
        { "KVM_RUN", KvmIoctls.Run, 0xAE80 },
        { "KVM_GET_REGS", KvmIoctls.GetRegs, 0x8090AE81 },
        { "KVM_SET_REGS", KvmIoctls.SetRegs, 0x4090AE82 },
        { "KVM_GET_SREGS", KvmIoctls.GetSregs, 0x8138AE83 },
        { "KVM_SET_SREGS", KvmIoctls.SetSregs, 0x4138AE84 },
        { "KVM_TRANSLATE", KvmIoctls.Translate, 0xC018AE85 },
        { "KVM_GET_MSRS", KvmIoctls.GetMsrs, 0xC008AE88 },
        { "KVM_SET_MSRS", KvmIoctls.SetMsrs, 0x4008AE89 },
        { "KVM_GET_FPU", KvmIoctls.GetFpu, 0x81A0AE8C },
        { "KVM_SET_FPU", KvmIoctls.SetFpu, 0x41A0AE8D },
        { "KVM_GET_LAPIC", KvmIoctls.GetLapic, 0x8400AE8E },
        { "KVM_SET_LAPIC", KvmIoctls.SetLapic, 0x4400AE8F },
        { "KVM_SET_CPUID2", KvmIoctls.SetCpuid2, 0x4008AE90 },
        { "KVM_GET_CPUID2", KvmIoctls.GetCpuid2, 0xC008AE91 },
        { "KVM_GET_MP_STATE", KvmIoctls.GetMpState, 0x8004AE98 },
        { "KVM_SET_MP_STATE", KvmIoctls.SetMpState, 0x4004AE99 },
        { "KVM_GET_XCRS", KvmIoctls.GetXcrs, 0x8188AEA6 },
        { "KVM_SET_XCRS", KvmIoctls.SetXcrs, 0x4188AEA7 },
    };

    [Theory]
    [MemberData(nameof(Numbers))]
    public void IoctlNumberMatchesKvmHeader(string name, ulong actual, ulong expected)
    {
        Assert.True(expected == actual, $"{name}: expected 0x{expected:X}, computed 0x{actual:X}");
    }

    [Fact]
    public void HelpersEncodeDirectionSizeTypeAndNumber()
    {
        Assert.Equal(0xAE80UL, (ulong)KvmIoctls.Io(0x80));
        Assert.Equal(0x8008AE10UL, (ulong)KvmIoctls.IoRead<ulong>(0x10));
        Assert.Equal(0x4004AE10UL, (ulong)KvmIoctls.IoWrite<uint>(0x10));
        Assert.Equal(0xC002AE10UL, (ulong)KvmIoctls.IoWriteRead<ushort>(0x10));
    }
}
