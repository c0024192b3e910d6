using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Tests;

/// <summary>A vCPU for hypercall tests: registers in an array, guest-virtual = guest-physical (paging off).</summary>
internal sealed class FakeHypercallContext : IHypercallContext
{
    private readonly GuestMemory _memory;

    public FakeHypercallContext(GuestMemory memory, int vcpuId = 0)
    {
        _memory = memory;
        VcpuId = vcpuId;
    }

    public ulong[] Registers { get; } = new ulong[16];

    public int VcpuId { get; }

    public bool LongMode { get; set; } = true;

    public int Cpl { get; set; }

    public bool Halted { get; private set; }

    public ulong GetRegister(int index) => Registers[index];

    public void SetRegister(int index, ulong value) => Registers[index] = value;

    public bool TryReadVirtual(ulong address, Span<byte> destination) =>
        _memory.TryGetSpan(address, destination.Length, out Span<byte> span) && span.TryCopyTo(destination);

    public bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source) =>
        _memory.TryGetSpan(address, source.Length, out Span<byte> span) && source.TryCopyTo(span);

    public void Halt() => Halted = true;

    /// <summary>Makes hypercall <paramref name="op"/> with the 64-bit ABI's arguments; returns RAX as a signed result.</summary>
    public long Call(IHypervisorInterface xen, HypercallOp op, ulong a0 = 0, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0)
    {
        Registers[0] = (ulong)op;
        Registers[7] = a0;
        Registers[6] = a1;
        Registers[2] = a2;
        Registers[10] = a3;
        Registers[8] = a4;
        xen.Hypercall(this);
        return (long)Registers[0];
    }
}
