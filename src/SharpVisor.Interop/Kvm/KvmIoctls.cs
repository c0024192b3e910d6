using System.Runtime.CompilerServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// KVM ioctl request numbers, computed the way &lt;linux/kvm.h&gt; does with the _IO/_IOR/_IOW/_IOWR
/// macros of &lt;asm-generic/ioctl.h&gt;: direction (2 bits) | argument size (14 bits) | type 0xAE | number.
/// The argument sizes come from the blittable structs in this folder, so a wrong struct shows up
/// as a wrong ioctl number in the tests.
/// </summary>
public static class KvmIoctls
{
    /// <summary>The ioctl "type" byte of every KVM request (KVMIO).</summary>
    public const uint KvmIo = 0xAE;

    private const int NumberShift = 0;
    private const int TypeShift = 8;
    private const int SizeShift = 16;
    private const int DirectionShift = 30;
    private const uint DirectionNone = 0;
    private const uint DirectionWrite = 1;
    private const uint DirectionRead = 2;

    // System ioctls (on the /dev/kvm fd).
    public static readonly nuint GetApiVersion = Io(0x00);
    public static readonly nuint CreateVm = Io(0x01);
    public static readonly nuint GetMsrIndexList = IoWriteRead<KvmMsrList>(0x02);
    public static readonly nuint CheckExtension = Io(0x03);
    public static readonly nuint GetVcpuMmapSize = Io(0x04);
    public static readonly nuint GetSupportedCpuid = IoWriteRead<KvmCpuid2>(0x05);

    // VM ioctls.
    public static readonly nuint CreateVcpu = Io(0x41);
    public static readonly nuint SetUserMemoryRegion = IoWrite<KvmUserspaceMemoryRegion>(0x46);
    public static readonly nuint GetDirtyLog = IoWrite<KvmDirtyLog>(0x42);
    public static readonly nuint SetTssAddr = Io(0x47);
    public static readonly nuint SetIdentityMapAddr = IoWrite<ulong>(0x48);
    public static readonly nuint CreateIrqchip = Io(0x60);
    public static readonly nuint IrqLine = IoWrite<KvmIrqLevel>(0x61);
    public static readonly nuint SetGsiRouting = IoWrite<KvmIrqRouting>(0x6A);
    public static readonly nuint Irqfd = IoWrite<KvmIrqfd>(0x76);
    public static readonly nuint CreatePit2 = IoWrite<KvmPitConfig>(0x77);
    public static readonly nuint Ioeventfd = IoWrite<KvmIoeventfd>(0x79);
    public static readonly nuint SignalMsi = IoWrite<KvmMsi>(0xA5);
    public static readonly nuint EnableCap = IoWrite<KvmEnableCap>(0xA3);
    public static readonly nuint SetMsrFilter = IoWrite<KvmMsrFilter>(0xC6);

    // VM ioctls of KVM's Xen support (KVM_CAP_XEN_HVM).
    public static readonly nuint XenHvmConfig = IoWrite<KvmXenHvmConfig>(0x7A);
    public static readonly nuint XenHvmGetAttr = IoWriteRead<KvmXenHvmAttr>(0xC8);
    public static readonly nuint XenHvmSetAttr = IoWrite<KvmXenHvmAttr>(0xC9);
    public static readonly nuint XenHvmEvtchnSend = IoWrite<KvmIrqRoutingXenEvtchn>(0xD0);

    // vCPU ioctls.
    public static readonly nuint Run = Io(0x80);
    public static readonly nuint GetRegs = IoRead<KvmRegs>(0x81);
    public static readonly nuint SetRegs = IoWrite<KvmRegs>(0x82);
    public static readonly nuint GetSregs = IoRead<KvmSregs>(0x83);
    public static readonly nuint SetSregs = IoWrite<KvmSregs>(0x84);
    public static readonly nuint Translate = IoWriteRead<KvmTranslation>(0x85);
    public static readonly nuint GetMsrs = IoWriteRead<KvmMsrs>(0x88);
    public static readonly nuint SetMsrs = IoWrite<KvmMsrs>(0x89);
    public static readonly nuint GetFpu = IoRead<KvmFpu>(0x8C);
    public static readonly nuint SetFpu = IoWrite<KvmFpu>(0x8D);
    public static readonly nuint GetLapic = IoRead<KvmLapicState>(0x8E);
    public static readonly nuint SetLapic = IoWrite<KvmLapicState>(0x8F);
    public static readonly nuint SetCpuid2 = IoWrite<KvmCpuid2>(0x90);
    public static readonly nuint GetCpuid2 = IoWriteRead<KvmCpuid2>(0x91);
    public static readonly nuint GetMpState = IoRead<KvmMpState>(0x98);
    public static readonly nuint SetMpState = IoWrite<KvmMpState>(0x99);
    public static readonly nuint GetXcrs = IoRead<KvmXcrs>(0xA6);
    public static readonly nuint GetXsave = IoRead<KvmXsave>(0xA4);
    public static readonly nuint SetXsave = IoWrite<KvmXsave>(0xA5);
    public static readonly nuint GetVcpuEvents = IoRead<KvmVcpuEvents>(0x9F);
    public static readonly nuint SetVcpuEvents = IoWrite<KvmVcpuEvents>(0xA0);
    public static readonly nuint XenVcpuGetAttr = IoWriteRead<KvmXenVcpuAttr>(0xCA);
    public static readonly nuint XenVcpuSetAttr = IoWrite<KvmXenVcpuAttr>(0xCB);

    // VM ioctls for snapshots: the in-kernel irqchip, PIT and kvmclock.
    public static readonly nuint GetIrqchip = IoWriteRead<KvmIrqchip>(0x62);
    public static readonly nuint SetIrqchip = IoRead<KvmIrqchip>(0x63);
    public static readonly nuint GetPit2 = IoRead<KvmPitState2>(0x9F);
    public static readonly nuint SetPit2 = IoWrite<KvmPitState2>(0xA0);
    public static readonly nuint GetClock = IoRead<KvmClockData>(0x7C);
    public static readonly nuint SetClock = IoWrite<KvmClockData>(0x7B);
    public static readonly nuint SetXcrs = IoWrite<KvmXcrs>(0xA7);

    /// <summary>_IO(KVMIO, nr): no argument struct.</summary>
    public static nuint Io(uint number) => Encode(DirectionNone, number, 0);

    /// <summary>_IOR(KVMIO, nr, T): the kernel writes a T.</summary>
    public static nuint IoRead<T>(uint number)
        where T : unmanaged => Encode(DirectionRead, number, Unsafe.SizeOf<T>());

    /// <summary>_IOW(KVMIO, nr, T): the kernel reads a T.</summary>
    public static nuint IoWrite<T>(uint number)
        where T : unmanaged => Encode(DirectionWrite, number, Unsafe.SizeOf<T>());

    /// <summary>_IOWR(KVMIO, nr, T): both ways.</summary>
    public static nuint IoWriteRead<T>(uint number)
        where T : unmanaged => Encode(DirectionRead | DirectionWrite, number, Unsafe.SizeOf<T>());

    private static nuint Encode(uint direction, uint number, int size)
    {
        // The size field is 14 bits wide.
        if ((uint)size >= 1u << 14)
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"ioctl argument of {size} bytes does not fit the size field");
        }

        return (nuint)((direction << DirectionShift) | ((uint)size << SizeShift) | (KvmIo << TypeShift) | (number << NumberShift));
    }
}
