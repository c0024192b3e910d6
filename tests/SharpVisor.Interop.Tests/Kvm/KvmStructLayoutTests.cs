using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Interop.Kvm;

namespace SharpVisor.Interop.Tests.Kvm;

/// <summary>
/// Sizes and field offsets of the KVM structs against &lt;linux/kvm.h&gt; on x86-64
/// (values from sizeof/offsetof in a C program compiled against the header).
/// </summary>
public class KvmStructLayoutTests
{
    public static TheoryData<string, int, int> Sizes => new()
    {
        { "kvm_run", Unsafe.SizeOf<KvmRun>(), 2352 },
        { "kvm_run.io", Unsafe.SizeOf<KvmRunIo>(), 16 },
        { "kvm_regs", Unsafe.SizeOf<KvmRegs>(), 144 },
        { "kvm_sregs", Unsafe.SizeOf<KvmSregs>(), 312 },
        { "kvm_segment", Unsafe.SizeOf<KvmSegment>(), 24 },
        { "kvm_dtable", Unsafe.SizeOf<KvmDtable>(), 16 },
        { "kvm_userspace_memory_region", Unsafe.SizeOf<KvmUserspaceMemoryRegion>(), 32 },
        { "kvm_cpuid2", Unsafe.SizeOf<KvmCpuid2>(), 8 },
        { "kvm_cpuid_entry2", Unsafe.SizeOf<KvmCpuidEntry2>(), 40 },
        { "kvm_msrs", Unsafe.SizeOf<KvmMsrs>(), 8 },
        { "kvm_msr_entry", Unsafe.SizeOf<KvmMsrEntry>(), 16 },
        { "kvm_msr_list", Unsafe.SizeOf<KvmMsrList>(), 4 },
        { "kvm_irq_level", Unsafe.SizeOf<KvmIrqLevel>(), 8 },
        { "kvm_pit_config", Unsafe.SizeOf<KvmPitConfig>(), 64 },
        { "kvm_irqfd", Unsafe.SizeOf<KvmIrqfd>(), 32 },
        { "kvm_ioeventfd", Unsafe.SizeOf<KvmIoeventfd>(), 64 },
        { "kvm_msi", Unsafe.SizeOf<KvmMsi>(), 32 },
        { "kvm_irq_routing", Unsafe.SizeOf<KvmIrqRouting>(), 8 },
        { "kvm_irq_routing_entry", Unsafe.SizeOf<KvmIrqRoutingEntry>(), 48 },
        { "kvm_lapic_state", Unsafe.SizeOf<KvmLapicState>(), 1024 },
        { "kvm_translation", Unsafe.SizeOf<KvmTranslation>(), 24 },
        { "kvm_fpu", Unsafe.SizeOf<KvmFpu>(), 416 },
        { "kvm_xcrs", Unsafe.SizeOf<KvmXcrs>(), 392 },
        { "kvm_mp_state", Unsafe.SizeOf<KvmMpState>(), 4 },
        { "kvm_enable_cap", Unsafe.SizeOf<KvmEnableCap>(), 104 },
        { "kvm_msr_filter", Unsafe.SizeOf<KvmMsrFilter>(), 392 },
        { "kvm_msr_filter_range", Unsafe.SizeOf<KvmMsrFilterRange>(), 24 },
    };

    public static TheoryData<string, int, int> Offsets => new()
    {
        { "kvm_run.immediate_exit", Offset<KvmRun>(nameof(KvmRun.ImmediateExit)), 1 },
        { "kvm_run.exit_reason", Offset<KvmRun>(nameof(KvmRun.ExitReason)), 8 },
        { "kvm_run.if_flag", Offset<KvmRun>(nameof(KvmRun.IfFlag)), 13 },
        { "kvm_run.cr8", Offset<KvmRun>(nameof(KvmRun.Cr8)), 16 },
        { "kvm_run.apic_base", Offset<KvmRun>(nameof(KvmRun.ApicBase)), 24 },
        { "kvm_run.io.direction", Offset<KvmRun>(nameof(KvmRun.Io)) + Offset<KvmRunIo>(nameof(KvmRunIo.Direction)), 32 },
        { "kvm_run.io.size", Offset<KvmRun>(nameof(KvmRun.Io)) + Offset<KvmRunIo>(nameof(KvmRunIo.Size)), 33 },
        { "kvm_run.io.port", Offset<KvmRun>(nameof(KvmRun.Io)) + Offset<KvmRunIo>(nameof(KvmRunIo.Port)), 34 },
        { "kvm_run.io.count", Offset<KvmRun>(nameof(KvmRun.Io)) + Offset<KvmRunIo>(nameof(KvmRunIo.Count)), 36 },
        { "kvm_run.io.data_offset", Offset<KvmRun>(nameof(KvmRun.Io)) + Offset<KvmRunIo>(nameof(KvmRunIo.DataOffset)), 40 },
        { "kvm_run.mmio.phys_addr", Offset<KvmRun>(nameof(KvmRun.Mmio)) + Offset<KvmRunMmio>(nameof(KvmRunMmio.PhysAddr)), 32 },
        { "kvm_run.mmio.data", Offset<KvmRun>(nameof(KvmRun.Mmio)) + Offset<KvmRunMmio>(nameof(KvmRunMmio.Data)), 40 },
        { "kvm_run.mmio.len", Offset<KvmRun>(nameof(KvmRun.Mmio)) + Offset<KvmRunMmio>(nameof(KvmRunMmio.Len)), 48 },
        { "kvm_run.mmio.is_write", Offset<KvmRun>(nameof(KvmRun.Mmio)) + Offset<KvmRunMmio>(nameof(KvmRunMmio.IsWrite)), 52 },
        { "kvm_run.hw.hardware_exit_reason", Offset<KvmRun>(nameof(KvmRun.HardwareExitReason)), 32 },
        { "kvm_run.fail_entry.hardware_entry_failure_reason", Offset<KvmRun>(nameof(KvmRun.FailEntry)) + Offset<KvmRunFailEntry>(nameof(KvmRunFailEntry.HardwareEntryFailureReason)), 32 },
        { "kvm_run.fail_entry.cpu", Offset<KvmRun>(nameof(KvmRun.FailEntry)) + Offset<KvmRunFailEntry>(nameof(KvmRunFailEntry.Cpu)), 40 },
        { "kvm_run.msr.error", Offset<KvmRun>(nameof(KvmRun.Msr)) + Offset<KvmRunMsr>(nameof(KvmRunMsr.Error)), 32 },
        { "kvm_run.msr.reason", Offset<KvmRun>(nameof(KvmRun.Msr)) + Offset<KvmRunMsr>(nameof(KvmRunMsr.Reason)), 40 },
        { "kvm_run.msr.index", Offset<KvmRun>(nameof(KvmRun.Msr)) + Offset<KvmRunMsr>(nameof(KvmRunMsr.Index)), 44 },
        { "kvm_run.msr.data", Offset<KvmRun>(nameof(KvmRun.Msr)) + Offset<KvmRunMsr>(nameof(KvmRunMsr.Data)), 48 },
        { "kvm_msr_filter_range.bitmap", Offset<KvmMsrFilterRange>(nameof(KvmMsrFilterRange.Bitmap)), 16 },
        { "kvm_run.internal.suberror", Offset<KvmRun>(nameof(KvmRun.Internal)) + Offset<KvmRunInternal>(nameof(KvmRunInternal.Suberror)), 32 },
        { "kvm_run.internal.ndata", Offset<KvmRun>(nameof(KvmRun.Internal)) + Offset<KvmRunInternal>(nameof(KvmRunInternal.NData)), 36 },
        { "kvm_run.internal.data", Offset<KvmRun>(nameof(KvmRun.Internal)) + Offset<KvmRunInternal>(nameof(KvmRunInternal.Data)), 40 },
        { "kvm_run.system_event.type", Offset<KvmRun>(nameof(KvmRun.SystemEvent)) + Offset<KvmRunSystemEvent>(nameof(KvmRunSystemEvent.Type)), 32 },
        { "kvm_run.system_event.ndata", Offset<KvmRun>(nameof(KvmRun.SystemEvent)) + Offset<KvmRunSystemEvent>(nameof(KvmRunSystemEvent.NData)), 36 },
        { "kvm_run.system_event.data", Offset<KvmRun>(nameof(KvmRun.SystemEvent)) + Offset<KvmRunSystemEvent>(nameof(KvmRunSystemEvent.Data)), 40 },
        { "kvm_run.kvm_valid_regs", Offset<KvmRun>(nameof(KvmRun.KvmValidRegs)), 288 },
        { "kvm_run.kvm_dirty_regs", Offset<KvmRun>(nameof(KvmRun.KvmDirtyRegs)), 296 },
        { "kvm_regs.rip", Offset<KvmRegs>(nameof(KvmRegs.Rip)), 128 },
        { "kvm_regs.rflags", Offset<KvmRegs>(nameof(KvmRegs.Rflags)), 136 },
        { "kvm_sregs.ds", Offset<KvmSregs>(nameof(KvmSregs.Ds)), 24 },
        { "kvm_sregs.tr", Offset<KvmSregs>(nameof(KvmSregs.Tr)), 144 },
        { "kvm_sregs.ldt", Offset<KvmSregs>(nameof(KvmSregs.Ldt)), 168 },
        { "kvm_sregs.gdt", Offset<KvmSregs>(nameof(KvmSregs.Gdt)), 192 },
        { "kvm_sregs.idt", Offset<KvmSregs>(nameof(KvmSregs.Idt)), 208 },
        { "kvm_sregs.cr0", Offset<KvmSregs>(nameof(KvmSregs.Cr0)), 224 },
        { "kvm_sregs.cr3", Offset<KvmSregs>(nameof(KvmSregs.Cr3)), 240 },
        { "kvm_sregs.cr8", Offset<KvmSregs>(nameof(KvmSregs.Cr8)), 256 },
        { "kvm_sregs.efer", Offset<KvmSregs>(nameof(KvmSregs.Efer)), 264 },
        { "kvm_sregs.apic_base", Offset<KvmSregs>(nameof(KvmSregs.ApicBase)), 272 },
        { "kvm_sregs.interrupt_bitmap", Offset<KvmSregs>(nameof(KvmSregs.InterruptBitmap)), 280 },
        { "kvm_segment.limit", Offset<KvmSegment>(nameof(KvmSegment.Limit)), 8 },
        { "kvm_segment.selector", Offset<KvmSegment>(nameof(KvmSegment.Selector)), 12 },
        { "kvm_segment.type", Offset<KvmSegment>(nameof(KvmSegment.Type)), 14 },
        { "kvm_segment.present", Offset<KvmSegment>(nameof(KvmSegment.Present)), 15 },
        { "kvm_segment.dpl", Offset<KvmSegment>(nameof(KvmSegment.Dpl)), 16 },
        { "kvm_segment.db", Offset<KvmSegment>(nameof(KvmSegment.Db)), 17 },
        { "kvm_segment.s", Offset<KvmSegment>(nameof(KvmSegment.S)), 18 },
        { "kvm_segment.l", Offset<KvmSegment>(nameof(KvmSegment.L)), 19 },
        { "kvm_segment.g", Offset<KvmSegment>(nameof(KvmSegment.G)), 20 },
        { "kvm_segment.avl", Offset<KvmSegment>(nameof(KvmSegment.Avl)), 21 },
        { "kvm_segment.unusable", Offset<KvmSegment>(nameof(KvmSegment.Unusable)), 22 },
        { "kvm_dtable.limit", Offset<KvmDtable>(nameof(KvmDtable.Limit)), 8 },
        { "kvm_userspace_memory_region.flags", Offset<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.Flags)), 4 },
        { "kvm_userspace_memory_region.guest_phys_addr", Offset<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.GuestPhysAddr)), 8 },
        { "kvm_userspace_memory_region.memory_size", Offset<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.MemorySize)), 16 },
        { "kvm_userspace_memory_region.userspace_addr", Offset<KvmUserspaceMemoryRegion>(nameof(KvmUserspaceMemoryRegion.UserspaceAddr)), 24 },
        { "kvm_cpuid_entry2.index", Offset<KvmCpuidEntry2>(nameof(KvmCpuidEntry2.Index)), 4 },
        { "kvm_cpuid_entry2.flags", Offset<KvmCpuidEntry2>(nameof(KvmCpuidEntry2.Flags)), 8 },
        { "kvm_cpuid_entry2.eax", Offset<KvmCpuidEntry2>(nameof(KvmCpuidEntry2.Eax)), 12 },
        { "kvm_cpuid_entry2.edx", Offset<KvmCpuidEntry2>(nameof(KvmCpuidEntry2.Edx)), 24 },
        { "kvm_msr_entry.data", Offset<KvmMsrEntry>(nameof(KvmMsrEntry.Data)), 8 },
        { "kvm_irqfd.gsi", Offset<KvmIrqfd>(nameof(KvmIrqfd.Gsi)), 4 },
        { "kvm_irqfd.flags", Offset<KvmIrqfd>(nameof(KvmIrqfd.Flags)), 8 },
        { "kvm_irqfd.resamplefd", Offset<KvmIrqfd>(nameof(KvmIrqfd.ResampleFd)), 12 },
        { "kvm_ioeventfd.addr", Offset<KvmIoeventfd>(nameof(KvmIoeventfd.Addr)), 8 },
        { "kvm_ioeventfd.len", Offset<KvmIoeventfd>(nameof(KvmIoeventfd.Len)), 16 },
        { "kvm_ioeventfd.fd", Offset<KvmIoeventfd>(nameof(KvmIoeventfd.Fd)), 20 },
        { "kvm_ioeventfd.flags", Offset<KvmIoeventfd>(nameof(KvmIoeventfd.Flags)), 24 },
        { "kvm_msi.address_hi", Offset<KvmMsi>(nameof(KvmMsi.AddressHi)), 4 },
        { "kvm_msi.data", Offset<KvmMsi>(nameof(KvmMsi.Data)), 8 },
        { "kvm_msi.flags", Offset<KvmMsi>(nameof(KvmMsi.Flags)), 12 },
        { "kvm_msi.devid", Offset<KvmMsi>(nameof(KvmMsi.DevId)), 16 },
        { "kvm_irq_routing_entry.type", Offset<KvmIrqRoutingEntry>(nameof(KvmIrqRoutingEntry.Type)), 4 },
        { "kvm_irq_routing_entry.flags", Offset<KvmIrqRoutingEntry>(nameof(KvmIrqRoutingEntry.Flags)), 8 },
        { "kvm_irq_routing_entry.u", Offset<KvmIrqRoutingEntry>(nameof(KvmIrqRoutingEntry.Irqchip)), 16 },
        { "kvm_irq_routing_entry.u.msi.data", Offset<KvmIrqRoutingEntry>(nameof(KvmIrqRoutingEntry.MsiData)), 24 },
        { "kvm_translation.physical_address", Offset<KvmTranslation>(nameof(KvmTranslation.PhysicalAddress)), 8 },
        { "kvm_translation.valid", Offset<KvmTranslation>(nameof(KvmTranslation.Valid)), 16 },
        { "kvm_translation.writeable", Offset<KvmTranslation>(nameof(KvmTranslation.Writeable)), 17 },
        { "kvm_translation.usermode", Offset<KvmTranslation>(nameof(KvmTranslation.Usermode)), 18 },
        { "kvm_fpu.fcw", Offset<KvmFpu>(nameof(KvmFpu.Fcw)), 128 },
        { "kvm_fpu.fsw", Offset<KvmFpu>(nameof(KvmFpu.Fsw)), 130 },
        { "kvm_fpu.ftwx", Offset<KvmFpu>(nameof(KvmFpu.Ftwx)), 132 },
        { "kvm_fpu.last_opcode", Offset<KvmFpu>(nameof(KvmFpu.LastOpcode)), 134 },
        { "kvm_fpu.last_ip", Offset<KvmFpu>(nameof(KvmFpu.LastIp)), 136 },
        { "kvm_fpu.last_dp", Offset<KvmFpu>(nameof(KvmFpu.LastDp)), 144 },
        { "kvm_fpu.xmm", Offset<KvmFpu>(nameof(KvmFpu.Xmm)), 152 },
        { "kvm_fpu.mxcsr", Offset<KvmFpu>(nameof(KvmFpu.Mxcsr)), 408 },
        { "kvm_xcrs.xcrs", Offset<KvmXcrs>(nameof(KvmXcrs.Entries)), 8 },
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

    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);
}
