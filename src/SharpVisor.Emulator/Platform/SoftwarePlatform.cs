using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// Everything the software accelerator provides that KVM provides in-kernel, built and wired for
/// one machine: the time base, the interrupt controllers (<see cref="IrqChip"/>, the machine's
/// <c>Interrupts</c>), the PIT, the CMOS RTC and kvmclock. The vCPU loop calls
/// <see cref="PollTimers"/> and its local APIC's <see cref="LocalApic.UpdateTimer"/> regularly, and
/// sleeps in HLT no later than <see cref="NextDeadlineFor"/>.
/// </summary>
public sealed class SoftwarePlatform
{
    /// <param name="memory">Guest RAM (kvmclock writes into it; the RTC reports its size).</param>
    /// <param name="vcpuCount">Number of vCPUs, one local APIC each.</param>
    /// <param name="time">The time base (default: the system clock).</param>
    /// <param name="log">Where guest misbehaviour is reported.</param>
    /// <param name="x2ApicSupported">Whether the CPU advertises x2APIC.</param>
    /// <param name="irq0IoApicPin">See <see cref="SoftwareIrqChip.Irq0IoApicPin"/>: must agree with the MADT.</param>
    public SoftwarePlatform(GuestMemory memory, int vcpuCount, PlatformTimeBase? time = null, PlatformLog? log = null, bool x2ApicSupported = true, int irq0IoApicPin = 0)
    {
        Time = time ?? new PlatformTimeBase();
        Log = log ?? PlatformLog.Null;
        IrqChip = new SoftwareIrqChip(vcpuCount, Time, Log, x2ApicSupported) { Irq0IoApicPin = irq0IoApicPin };
        Pit = new Pit8254(Time, IrqChip);
        Rtc = new CmosRtc(Time, IrqChip, Log);
        Rtc.SetMemorySize(memory);
        Rtc.SetCpuCount(vcpuCount);
        KvmClock = new KvmClock(memory, Time, vcpuCount, Log);
    }

    public PlatformTimeBase Time { get; }

    public PlatformLog Log { get; }

    public SoftwareIrqChip IrqChip { get; }

    public Pit8254 Pit { get; }

    public CmosRtc Rtc { get; }

    public KvmClock KvmClock { get; }

    /// <summary>Registers the PIC, ELCR, PIT, port 0x61, RTC and I/O APIC on the machine's buses.</summary>
    public void Register(PortIoBus ports, MmioBus mmio)
    {
        IrqChip.RegisterDevices(ports, mmio);
        Pit.RegisterPorts(ports);
        Rtc.RegisterPorts(ports);
    }

    /// <summary>Raises the PIT's and the RTC's interrupts that are due. Any vCPU thread may call it.</summary>
    public void PollTimers()
    {
        Pit.Poll();
        Rtc.Poll();
    }

    /// <summary>When the machine-wide timers (PIT, RTC) next need a poll.</summary>
    public long NextDeadline => Math.Min(Pit.NextDeadline, Rtc.NextDeadline);

    /// <summary>The latest virtual time a halted <paramref name="vcpu"/> may sleep until.</summary>
    public long NextDeadlineFor(int vcpu) => Math.Min(NextDeadline, IrqChip.GetLocalApic(vcpu).NextTimerDeadline);

    /// <summary>Whether an MSR belongs to the platform (local APIC, TSC deadline, kvmclock).</summary>
    public static bool HandlesMsr(uint msr) => LocalApic.HandlesMsr(msr) || KvmClock.HandlesMsr(msr);

    /// <summary>RDMSR for a platform MSR. False means #GP.</summary>
    public bool ReadMsr(int vcpu, uint msr, out ulong value) =>
        LocalApic.HandlesMsr(msr) ? IrqChip.GetLocalApic(vcpu).ReadMsr(msr, out value) : KvmClock.ReadMsr(vcpu, msr, out value);

    /// <summary>WRMSR for a platform MSR. False means #GP.</summary>
    public bool WriteMsr(int vcpu, uint msr, ulong value) =>
        LocalApic.HandlesMsr(msr) ? IrqChip.GetLocalApic(vcpu).WriteMsr(msr, value) : KvmClock.WriteMsr(vcpu, msr, value);

    /// <summary>Stops virtual time (machine paused).</summary>
    public void Pause() => Time.Pause();

    /// <summary>Restarts virtual time and tells the guest it was stopped.</summary>
    public void Resume()
    {
        Time.Resume();
        KvmClock.NotifyGuestStopped();
    }

    /// <summary>What a snapshot holds of the platform, in load order: virtual time first, so every deadline means the same instant.</summary>
    public IReadOnlyList<ISnapshotable> SnapshotParts => [Time, IrqChip.Pic, IrqChip.IoApic, Pit, Rtc, KvmClock];
}
