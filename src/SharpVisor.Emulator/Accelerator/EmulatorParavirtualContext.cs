using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>One emulated vCPU as a paravirtualizing hypervisor drives it (<see cref="IParavirtualCpuContext"/>).</summary>
internal sealed class EmulatorParavirtualContext : IParavirtualCpuContext
{
    private readonly X86Cpu _cpu;
    private readonly MachineControl _control;

    public EmulatorParavirtualContext(X86Cpu cpu, int vcpuId, MachineControl control)
    {
        _cpu = cpu;
        _control = control;
        VcpuId = vcpuId;
    }

    public int VcpuId { get; }

    public bool LongMode => _cpu.Mode == CpuMode.Long64;

    public int Cpl => _cpu.CurrentPrivilegeLevel;

    /// <summary>Set by <see cref="Halt"/>: the vCPU sleeps once the hypercall returns.</summary>
    public bool HaltRequested { get; set; }

    public ulong Rip
    {
        get => _cpu.Rip;
        set => _cpu.Rip = value;
    }

    public ulong Rflags
    {
        get => _cpu.Rflags;
        set => _cpu.Rflags = value;
    }

    public ulong Cr2 => _cpu.Cr2;

    public ulong Cr4 => _cpu.Cr4;

    public bool TrySetCr4(ulong value)
    {
        try
        {
            _cpu.WriteControlRegister(4, value);
            return true;
        }
        catch (CpuException)
        {
            return false;
        }
    }

    public bool TaskSwitched
    {
        get => _cpu.TaskSwitched;
        set => _cpu.TaskSwitched = value;
    }

    public ulong FsBase
    {
        get => _cpu.GetSegmentBase(X86Cpu.SegFs);
        set => _cpu.SetSegmentBase(X86Cpu.SegFs, value);
    }

    public ulong GsBase
    {
        get => _cpu.GetSegmentBase(X86Cpu.SegGs);
        set => _cpu.SetSegmentBase(X86Cpu.SegGs, value);
    }

    public ulong KernelGsBase
    {
        get => _cpu.KernelGsBase;
        set => _cpu.KernelGsBase = value;
    }

    public ulong GetRegister(int index) => _cpu.GetRegister(index);

    public void SetRegister(int index, ulong value) => _cpu.SetRegister(index, value);

    public bool TryReadVirtual(ulong address, Span<byte> destination) => _cpu.TryCopyRam(address, destination, MemoryAccess.Read);

    public bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source) => _cpu.TryCopyRam(address, source.ToArray(), MemoryAccess.Write);

    public void Halt() => HaltRequested = true;

    public ushort GetSelector(ParavirtualSegment segment) => _cpu.GetSegmentSelector((int)segment);

    public bool TryLoadSegment(ParavirtualSegment segment, ushort selector) => _cpu.TryLoadSegmentRegister((int)segment, selector);

    public void SetPageTableRoot(ulong machineAddress) => _cpu.LoadPageTableRoot(machineAddress);

    public void FlushTlb() => _cpu.FlushTlb();

    public void FlushTlbPage(ulong linearAddress) => _cpu.FlushTlbPage(linearAddress);

    public void SetGdt(ulong linearBase, ushort limit) => _cpu.SetGdtr(linearBase, limit);

    public CpuidResult Cpuid(uint leaf, uint subleaf)
    {
        (uint a, uint b, uint c, uint d) = _cpu.QueryCpuid(leaf, subleaf);
        return new CpuidResult(a, b, c, d);
    }

    public void CrashDomain(string reason) => _control.Crash(reason);
}
