namespace SharpVisor.Kvm.Tests;

/// <summary>
/// A register file and a page table standing in for a KVM vCPU during a Xen hypercall exit: a unit
/// test's stand-in that proves the adapter's mapping, not KVM.
/// </summary>
internal sealed class FakeKvmXenVcpu : IKvmXenVcpuAccess
{
    public ulong[] Registers { get; } = new ulong[16];

    /// <summary>Linear page → (physical page, writable).</summary>
    public Dictionary<ulong, (ulong Physical, bool Writable)> Pages { get; } = [];

    public List<int> RegistersRead { get; } = [];

    public bool Halted { get; private set; }

    public ulong GetRegister(int index)
    {
        RegistersRead.Add(index);
        return Registers[index];
    }

    public void SetRegister(int index, ulong value) => Registers[index] = value;

    public bool TryTranslate(ulong linear, bool write, out ulong physical)
    {
        physical = 0;
        if (!Pages.TryGetValue(linear & ~0xFFFUL, out (ulong Physical, bool Writable) page) || (write && !page.Writable))
        {
            return false;
        }

        physical = page.Physical | (linear & 0xFFF);
        return true;
    }

    public void HaltAfterHypercall() => Halted = true;
}
