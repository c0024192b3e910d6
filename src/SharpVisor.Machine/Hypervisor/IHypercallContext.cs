namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// The calling vCPU as one hypercall sees it: its general registers (the ABI picks the argument
/// registers), its mode and privilege, and the guest's virtual memory as the vCPU translates it.
/// Virtual-memory accesses never fault the guest: an address that does not translate to RAM
/// answers false (the hypervisor returns -EFAULT).
/// </summary>
public interface IHypercallContext
{
    int VcpuId { get; }

    /// <summary>True in 64-bit mode; false in 32-bit protected (or compatibility) mode.</summary>
    bool LongMode { get; }

    /// <summary>The current privilege level (hypercalls from user mode are refused).</summary>
    int Cpl { get; }

    /// <summary>A general register by its encoding number (0 RAX, 1 RCX, 2 RDX, 3 RBX, ... 15 R15).</summary>
    ulong GetRegister(int index);

    void SetRegister(int index, ulong value);

    bool TryReadVirtual(ulong address, Span<byte> destination);

    bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source);

    /// <summary>Halts the vCPU after the hypercall until an upcall (or another wake-up) arrives.</summary>
    void Halt();
}
