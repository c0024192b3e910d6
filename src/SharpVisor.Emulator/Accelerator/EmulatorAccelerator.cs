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
    public EmulatorAccelerator(MmuMode mmuMode = MmuMode.Shadow, Action<string>? log = null)
    {
        if (!Enum.IsDefined(mmuMode))
        {
            throw new ArgumentOutOfRangeException(nameof(mmuMode), mmuMode, "unknown MMU mode");
        }

        MmuMode = mmuMode;
        Log = log;
    }

    public string Name => "emulator";

    public MmuMode MmuMode { get; }

    public Action<string>? Log { get; }

    public IVirtualMachine CreateVirtualMachine(GuestMemory memory, int vcpuCount) =>
        new EmulatorVirtualMachine(memory, vcpuCount, MmuMode, Log);
}
