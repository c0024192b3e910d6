using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Interop.Kvm;

namespace SharpVisor.Interop.Tests.Kvm;

/// <summary>
/// KVM's Xen support (KVM_CAP_XEN_HVM) against &lt;linux/kvm.h&gt; on x86-64: struct sizes, field offsets,
/// ioctl numbers and constants, the numbers printed by sizeof/offsetof/printf in a C program compiled
/// against the header (linux-libc-dev 6.1).
/// </summary>
public class KvmXenLayoutTests
{
    public static TheoryData<string, int, int> Sizes => new()
    {
        { "kvm_xen_hvm_config", Unsafe.SizeOf<KvmXenHvmConfig>(), 56 },
        { "kvm_xen_hvm_attr", Unsafe.SizeOf<KvmXenHvmAttr>(), 72 },
        { "kvm_xen_vcpu_attr", Unsafe.SizeOf<KvmXenVcpuAttr>(), 72 },
        { "kvm_xen_exit", Unsafe.SizeOf<KvmRunXen>(), 80 },
        { "kvm_irq_routing_xen_evtchn", Unsafe.SizeOf<KvmIrqRoutingXenEvtchn>(), 12 },
    };

    public static TheoryData<string, int, int> Offsets => new()
    {
        { "kvm_xen_hvm_config.flags", Offset<KvmXenHvmConfig>(nameof(KvmXenHvmConfig.Flags)), 0 },
        { "kvm_xen_hvm_config.msr", Offset<KvmXenHvmConfig>(nameof(KvmXenHvmConfig.Msr)), 4 },
        { "kvm_xen_hvm_config.blob_addr_32", Offset<KvmXenHvmConfig>(nameof(KvmXenHvmConfig.BlobAddr32)), 8 },
        { "kvm_xen_hvm_config.blob_addr_64", Offset<KvmXenHvmConfig>(nameof(KvmXenHvmConfig.BlobAddr64)), 16 },
        { "kvm_xen_hvm_config.blob_size_32", Offset<KvmXenHvmConfig>(nameof(KvmXenHvmConfig.BlobSize32)), 24 },
        { "kvm_xen_hvm_config.blob_size_64", Offset<KvmXenHvmConfig>(nameof(KvmXenHvmConfig.BlobSize64)), 25 },
        { "kvm_xen_hvm_attr.type", Offset<KvmXenHvmAttr>(nameof(KvmXenHvmAttr.Type)), 0 },
        { "kvm_xen_hvm_attr.u.long_mode", Offset<KvmXenHvmAttr>(nameof(KvmXenHvmAttr.LongMode)), 8 },
        { "kvm_xen_hvm_attr.u.vector", Offset<KvmXenHvmAttr>(nameof(KvmXenHvmAttr.Vector)), 8 },
        { "kvm_xen_hvm_attr.u.shared_info.gfn", Offset<KvmXenHvmAttr>(nameof(KvmXenHvmAttr.SharedInfoGfn)), 8 },
        { "kvm_xen_hvm_attr.u.xen_version", Offset<KvmXenHvmAttr>(nameof(KvmXenHvmAttr.XenVersion)), 8 },
        { "kvm_xen_vcpu_attr.type", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.Type)), 0 },
        { "kvm_xen_vcpu_attr.u.gpa", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.Gpa)), 8 },
        { "kvm_xen_vcpu_attr.u.vcpu_id", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.VcpuId)), 8 },
        { "kvm_xen_vcpu_attr.u.vector", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.Vector)), 8 },
        { "kvm_xen_vcpu_attr.u.timer.port", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.TimerPort)), 8 },
        { "kvm_xen_vcpu_attr.u.timer.priority", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.TimerPriority)), 12 },
        { "kvm_xen_vcpu_attr.u.timer.expires_ns", Offset<KvmXenVcpuAttr>(nameof(KvmXenVcpuAttr.TimerExpiresNs)), 16 },
        { "kvm_run.xen", Offset<KvmRun>(nameof(KvmRun.Xen)), 32 },
        { "kvm_xen_exit.type", Offset<KvmRunXen>(nameof(KvmRunXen.Type)), 0 },
        { "kvm_xen_exit.u.hcall.longmode", Offset<KvmRunXen>(nameof(KvmRunXen.LongMode)), 8 },
        { "kvm_xen_exit.u.hcall.cpl", Offset<KvmRunXen>(nameof(KvmRunXen.Cpl)), 12 },
        { "kvm_xen_exit.u.hcall.input", Offset<KvmRunXen>(nameof(KvmRunXen.Input)), 16 },
        { "kvm_xen_exit.u.hcall.result", Offset<KvmRunXen>(nameof(KvmRunXen.Result)), 24 },
        { "kvm_xen_exit.u.hcall.params", Offset<KvmRunXen>(nameof(KvmRunXen.Params)), 32 },
        { "kvm_irq_routing_xen_evtchn.vcpu", Offset<KvmIrqRoutingXenEvtchn>(nameof(KvmIrqRoutingXenEvtchn.Vcpu)), 4 },
        { "kvm_irq_routing_xen_evtchn.priority", Offset<KvmIrqRoutingXenEvtchn>(nameof(KvmIrqRoutingXenEvtchn.Priority)), 8 },
    };

    public static TheoryData<string, ulong, ulong> Ioctls => new()
    {
        { "KVM_XEN_HVM_CONFIG", KvmIoctls.XenHvmConfig, 0x4038AE7A },
        { "KVM_XEN_HVM_GET_ATTR", KvmIoctls.XenHvmGetAttr, 0xC048AEC8 },
        { "KVM_XEN_HVM_SET_ATTR", KvmIoctls.XenHvmSetAttr, 0x4048AEC9 },
        { "KVM_XEN_VCPU_GET_ATTR", KvmIoctls.XenVcpuGetAttr, 0xC048AECA },
        { "KVM_XEN_VCPU_SET_ATTR", KvmIoctls.XenVcpuSetAttr, 0x4048AECB },
        { "KVM_XEN_HVM_EVTCHN_SEND", KvmIoctls.XenHvmEvtchnSend, 0x400CAED0 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void StructSizeMatchesKvmHeader(string name, int actual, int expected)
    {
        Assert.True(expected == actual, $"sizeof({name}): expected {expected}, got {actual}");
    }

    [Theory]
    [MemberData(nameof(Offsets))]
    public void FieldOffsetMatchesKvmHeader(string name, int actual, int expected)
    {
        Assert.True(expected == actual, $"offsetof({name}): expected {expected}, got {actual}");
    }

    [Theory]
    [MemberData(nameof(Ioctls))]
    public void IoctlNumberMatchesKvmHeader(string name, ulong actual, ulong expected)
    {
        Assert.True(expected == actual, $"{name}: expected 0x{expected:x}, got 0x{actual:x}");
    }

    [Fact]
    public void ConstantsMatchTheHeader()
    {
        Assert.Equal(38, (int)KvmCapability.XenHvm);
        Assert.Equal(34u, (uint)KvmExitReason.Xen);
        Assert.Equal(1u, KvmRunXen.TypeHcall);
        Assert.Equal(
            (1u, 2u, 4u, 8u, 16u, 32u),
            (KvmXenHvmConfig.FlagHypercallMsr, KvmXenHvmConfig.FlagInterceptHcall, KvmXenHvmConfig.FlagSharedInfo,
             KvmXenHvmConfig.FlagRunstate, KvmXenHvmConfig.FlagEvtchn2Level, KvmXenHvmConfig.FlagEvtchnSend));
        Assert.Equal(
            (0, 1, 2, 3, 4),
            ((int)KvmXenHvmAttr.TypeLongMode, (int)KvmXenHvmAttr.TypeSharedInfo, (int)KvmXenHvmAttr.TypeUpcallVector,
             (int)KvmXenHvmAttr.TypeEvtchn, (int)KvmXenHvmAttr.TypeXenVersion));
        Assert.Equal(
            (0, 1, 2, 6, 7, 8),
            ((int)KvmXenVcpuAttr.TypeVcpuInfo, (int)KvmXenVcpuAttr.TypeVcpuTimeInfo, (int)KvmXenVcpuAttr.TypeRunstateAddr,
             (int)KvmXenVcpuAttr.TypeVcpuId, (int)KvmXenVcpuAttr.TypeTimer, (int)KvmXenVcpuAttr.TypeUpcallVector));
        Assert.Equal(uint.MaxValue, KvmIrqRoutingXenEvtchn.Priority2Level);
    }

    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);
}
