using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;

namespace SharpVisor.Kvm;

/// <summary>
/// One Xen hypercall KVM handed to user space (KVM_EXIT_XEN, KVM_EXIT_XEN_HCALL) as the Xen layer's
/// <see cref="IHypercallContext"/>: the op and the six argument registers come from the exit record
/// in the ABI's order, the result goes to <see cref="Result"/> (KVM puts it in RAX and steps over the
/// VMCALL/VMMCALL when the vCPU runs again), every other register goes through the vCPU, and guest
/// virtual addresses are translated page by page by the vCPU's paging, reaching RAM only.
/// </summary>
public sealed class KvmXenHypercallContext : IHypercallContext
{
    // Encoding numbers of the argument registers, in the order KVM fills params[]:
    // 64-bit RDI RSI RDX R10 R8 R9, 32-bit EBX ECX EDX ESI EDI EBP (Xen's hypercall ABIs).
    private static readonly int[] s_longModeArguments = [7, 6, 2, 10, 8, 9];
    private static readonly int[] s_compatArguments = [3, 1, 2, 6, 7, 5];

    private const ulong PageSize = 4096;

    private readonly IKvmXenVcpuAccess _vcpu;
    private readonly GuestMemory _memory;
    private readonly ulong[] _arguments = new ulong[KvmRunXen.ParameterCount];
    private readonly ulong _input;

    public unsafe KvmXenHypercallContext(int vcpuId, in KvmRunXen exit, IKvmXenVcpuAccess vcpu, GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ArgumentNullException.ThrowIfNull(memory);
        VcpuId = vcpuId;
        _vcpu = vcpu;
        _memory = memory;
        LongMode = exit.LongMode != 0;
        Cpl = (int)Math.Min(exit.Cpl, 3u);
        _input = exit.Input;
        for (int i = 0; i < _arguments.Length; i++)
        {
            _arguments[i] = exit.Params[i];
        }

        // Until the hypercall answers, RAX reads as the op (Xen leaves RAX alone only on preemption).
        Result = _input;
    }

    public int VcpuId { get; }

    public bool LongMode { get; }

    public int Cpl { get; }

    /// <summary>What goes back into kvm_run.xen.u.hcall.result: RAX after the hypercall.</summary>
    public ulong Result { get; private set; }

    public ulong GetRegister(int index)
    {
        if (index == 0)
        {
            return _input;
        }

        int argument = ArgumentSlot(index);
        return argument >= 0 ? _arguments[argument] : _vcpu.GetRegister(index);
    }

    public void SetRegister(int index, ulong value)
    {
        if (index == 0)
        {
            Result = value;
            return;
        }

        // KVM reloads no argument register from the exit record, so a change goes to the vCPU itself.
        int argument = ArgumentSlot(index);
        if (argument >= 0)
        {
            _arguments[argument] = value;
        }

        _vcpu.SetRegister(index, value);
    }

    public bool TryReadVirtual(ulong address, Span<byte> destination)
    {
        if (!TryTranslateRange(address, destination.Length, write: false, out List<(ulong Physical, int Length)> pieces))
        {
            return false;
        }

        int done = 0;
        foreach ((ulong physical, int length) in pieces)
        {
            _memory.GetSpan(physical, length).CopyTo(destination[done..]);
            done += length;
        }

        return true;
    }

    public bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source)
    {
        if (!TryTranslateRange(address, source.Length, write: true, out List<(ulong Physical, int Length)> pieces))
        {
            return false;
        }

        int done = 0;
        foreach ((ulong physical, int length) in pieces)
        {
            source.Slice(done, length).CopyTo(_memory.GetSpan(physical, length));
            done += length;
        }

        return true;
    }

    public void Halt() => _vcpu.HaltAfterHypercall();

    private int ArgumentSlot(int index) => Array.IndexOf(LongMode ? s_longModeArguments : s_compatArguments, index);

    /// <summary>
    /// Translates every page of [address, address + length) before any byte moves, so a copy that
    /// would fail part-way changes nothing; a page that is not RAM (MMIO, a hole) fails it.
    /// </summary>
    private bool TryTranslateRange(ulong address, int length, bool write, out List<(ulong Physical, int Length)> pieces)
    {
        ulong mask = LongMode ? ulong.MaxValue : uint.MaxValue;
        pieces = [];
        int done = 0;
        while (done < length)
        {
            ulong linear = (address + (ulong)done) & mask;
            int chunk = (int)Math.Min((ulong)(length - done), PageSize - (linear & (PageSize - 1)));
            if (!_vcpu.TryTranslate(linear, write, out ulong physical) || !_memory.IsValid(physical, (ulong)chunk))
            {
                return false;
            }

            pieces.Add((physical, chunk));
            done += chunk;
        }

        return true;
    }
}
