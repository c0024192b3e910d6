using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// The calling vCPU for one hypercall on the software accelerator. Guest-virtual accesses go
/// through the CPU's own MMU as supervisor accesses, page by page; a page that does not translate
/// or is not RAM answers false instead of faulting the guest.
/// </summary>
internal sealed class EmulatorHypercallContext : IHypercallContext
{
    private readonly X86Cpu _cpu;

    public EmulatorHypercallContext(X86Cpu cpu, int vcpuId)
    {
        _cpu = cpu;
        VcpuId = vcpuId;
    }

    public int VcpuId { get; }

    public bool LongMode => _cpu.Mode == CpuMode.Long64;

    public int Cpl => _cpu.CurrentPrivilegeLevel;

    /// <summary>Set by <see cref="Halt"/>: the vCPU sleeps once the hypercall returns.</summary>
    public bool HaltRequested { get; private set; }

    public ulong GetRegister(int index) => _cpu.GetRegister(index);

    public void SetRegister(int index, ulong value) => _cpu.SetRegister(index, value);

    public bool TryReadVirtual(ulong address, Span<byte> destination) => _cpu.TryCopyRam(address, destination, MemoryAccess.Read);

    public bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source) => _cpu.TryCopyRam(address, source.ToArray(), MemoryAccess.Write);

    public void Halt() => HaltRequested = true;
}
