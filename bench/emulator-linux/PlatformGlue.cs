using SharpVisor.Emulator;
using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;

namespace SharpVisor.Bench.EmulatorLinux;

/// <summary>
/// A minimal stand-in for the software accelerator's vCPU (which lives on another branch):
/// connects one <see cref="X86Cpu"/> to the <see cref="SoftwarePlatform"/> — MSRs, TSC, CPUID
/// bits, CR8, the local APIC's MMIO page — and delivers the APIC's events between runs.
/// </summary>
internal sealed class PlatformGlue : ICpuPlatform, IMmioHandler
{
    private readonly SoftwarePlatform _platform;
    private readonly LocalApic _apic;
    private readonly MmioBus _mmio;

    public PlatformGlue(SoftwarePlatform platform, MmioBus mmio)
    {
        _platform = platform;
        _apic = platform.IrqChip.GetLocalApic(0);
        _mmio = mmio;
    }

    public bool TryReadMsr(X86Cpu cpu, uint index, out ulong value)
    {
        value = 0;
        return SoftwarePlatform.HandlesMsr(index) && _platform.ReadMsr(0, index, out value);
    }

    public bool TryWriteMsr(X86Cpu cpu, uint index, ulong value) =>
        SoftwarePlatform.HandlesMsr(index) && _platform.WriteMsr(0, index, value);

    public ulong ReadTsc() => _platform.Time.ReadTsc();

    public void AdjustCpuid(X86Cpu cpu, uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
    {
        if (KvmCpuid.TryGetLeaf(leaf, out uint a, out uint b, out uint c, out uint d))
        {
            (eax, ebx, ecx, edx) = (a, b, c, d);
        }
        else if (leaf == 1)
        {
            ecx |= (1u << 31) | (1u << 24) | (1u << 21); // hypervisor, TSC deadline, x2APIC
            edx |= 1u << 9;                              // APIC
            ebx &= 0x00FF_FFFF;                          // APIC id 0
        }
    }

    public ulong ReadCr8(X86Cpu cpu)
    {
        Span<byte> tpr = stackalloc byte[4];
        _apic.Read(0x80, tpr);
        return (ulong)(tpr[0] >> 4);
    }

    public void WriteCr8(X86Cpu cpu, ulong value)
    {
        Span<byte> tpr = stackalloc byte[4];
        tpr.Clear();
        tpr[0] = (byte)(value << 4);
        _apic.Write(0x80, tpr);
    }

    public bool Read(ulong physicalAddress, Span<byte> data)
    {
        if (_apic.IsMmioAddress(physicalAddress))
        {
            _apic.Read(physicalAddress - _apic.MmioBase, data);
            return true;
        }

        return _mmio.Read(physicalAddress, data);
    }

    public bool Write(ulong physicalAddress, ReadOnlySpan<byte> data)
    {
        if (_apic.IsMmioAddress(physicalAddress))
        {
            _apic.Write(physicalAddress - _apic.MmioBase, data);
            return true;
        }

        return _mmio.Write(physicalAddress, data);
    }

    /// <summary>Polls the timers and hands the CPU what its local APIC has for it.</summary>
    public void DeliverEvents(X86Cpu cpu)
    {
        _platform.PollTimers();
        _apic.UpdateTimer();
        if (!_apic.HasPendingEvents && _platform.Time.NowNanoseconds < _apic.NextTimerDeadline)
        {
            cpu.InterruptWindowRequested = false;
            return;
        }

        while (_apic.TryTakeEvent(!cpu.IsNmiBlocked, cpu.CanAcceptInterrupt, out ApicEvent e))
        {
            switch (e.Kind)
            {
                case ApicEventKind.Init: cpu.EnterInitState(); break;
                case ApicEventKind.StartUp: cpu.DeliverStartup((byte)e.Vector); break;
                case ApicEventKind.Nmi: cpu.DeliverNmi(); break;
                case ApicEventKind.Interrupt: cpu.DeliverInterrupt((byte)e.Vector); break;
            }

            if (e.Kind == ApicEventKind.Interrupt)
            {
                break; // the handler runs first (IF is clear now)
            }
        }

        // An interrupt that must wait for IF (or the STI shadow): have Run stop as soon as it may go.
        cpu.InterruptWindowRequested = _apic.HasPendingEvents && !cpu.CanAcceptInterrupt;
    }

    /// <summary>Sleeps a halted CPU until its next timer or a wake-up.</summary>
    public void WaitWhileHalted() => _apic.WaitForWakeupUntil(_platform.NextDeadlineFor(0));
}
