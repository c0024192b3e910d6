using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// Full virtualization in software: SharpVisor's own x86-64 CPU, MMU (shadow or nested paging)
/// and the platform devices KVM would provide in its kernel (local APICs, I/O APIC, 8259 pair,
/// PIT, CMOS RTC, kvmclock). Needs no /dev/kvm.
/// </summary>
public sealed class EmulatorAccelerator : IAccelerator
{
    /// <param name="mmuMode">The memory-virtualization technique every vCPU uses.</param>
    /// <param name="log">
    /// Where guest misbehaviour the platform devices notice, and instructions the CPU does not
    /// implement, are reported (rate-limited: a guest can cause them at will).
    /// </param>
    /// <param name="vendor">The CPU vendor the guest sees (null: the host's, so a guest moved to KVM sees the same).</param>
    public EmulatorAccelerator(MmuMode mmuMode = MmuMode.Shadow, Action<string>? log = null, CpuVendor? vendor = null)
    {
        if (vendor is { } v && !Enum.IsDefined(v))
        {
            throw new ArgumentOutOfRangeException(nameof(vendor), vendor, "unknown CPU vendor");
        }

        if (!Enum.IsDefined(mmuMode))
        {
            throw new ArgumentOutOfRangeException(nameof(mmuMode), mmuMode, "unknown MMU mode");
        }

        MmuMode = mmuMode;
        Log = log;
        Vendor = vendor ?? HostCpu.Vendor;
    }

    public string Name => "emulator";

    public MmuMode MmuMode { get; }

    public Action<string>? Log { get; }

    /// <summary>The CPU vendor every vCPU presents (<see cref="CpuModel"/>).</summary>
    public CpuVendor Vendor { get; }

    public IVirtualMachine CreateVirtualMachine(GuestMemory memory, int vcpuCount) =>
        new EmulatorVirtualMachine(memory, vcpuCount, MmuMode, Log, Vendor);
}
