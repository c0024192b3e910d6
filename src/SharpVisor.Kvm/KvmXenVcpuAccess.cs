using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm;

/// <summary>
/// A KVM vCPU during one Xen hypercall exit, on its own thread: the registers read once on first use
/// and written back once (<see cref="Complete"/>) if a hypercall changed one, KVM_TRANSLATE for guest
/// virtual addresses, and the halt a SCHEDOP_block asks for.
/// </summary>
internal sealed class KvmXenVcpuAccess : IKvmXenVcpuAccess
{
    private readonly KvmVcpu _vcpu;
    private KvmRegs _regs;
    private bool _loaded;
    private bool _dirty;

    public KvmXenVcpuAccess(KvmVcpu vcpu) => _vcpu = vcpu;

    public bool HaltRequested { get; private set; }

    public ulong GetRegister(int index)
    {
        Load();
        return Slot(ref _regs, index);
    }

    public void SetRegister(int index, ulong value)
    {
        Load();
        Slot(ref _regs, index) = value;
        _dirty = true;
    }

    public bool TryTranslate(ulong linear, bool write, out ulong physical) => _vcpu.TryTranslateForXen(linear, write, out physical);

    public void HaltAfterHypercall() => HaltRequested = true;

    /// <summary>Writes changed registers back (RAX and RIP are KVM's to set when it completes the hypercall).</summary>
    public void Complete()
    {
        if (_dirty)
        {
            _vcpu.WriteRegisters(_regs);
        }
    }

    private void Load()
    {
        if (!_loaded)
        {
            _regs = _vcpu.ReadRegisters();
            _loaded = true;
        }
    }

    /// <summary>kvm_regs in encoding order: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15.</summary>
    private static ref ulong Slot(ref KvmRegs regs, int index)
    {
        switch (index)
        {
            case 0: return ref regs.Rax;
            case 1: return ref regs.Rcx;
            case 2: return ref regs.Rdx;
            case 3: return ref regs.Rbx;
            case 4: return ref regs.Rsp;
            case 5: return ref regs.Rbp;
            case 6: return ref regs.Rsi;
            case 7: return ref regs.Rdi;
            case 8: return ref regs.R8;
            case 9: return ref regs.R9;
            case 10: return ref regs.R10;
            case 11: return ref regs.R11;
            case 12: return ref regs.R12;
            case 13: return ref regs.R13;
            case 14: return ref regs.R14;
            case 15: return ref regs.R15;
            default: throw new ArgumentOutOfRangeException(nameof(index), index, "a general register is 0-15");
        }
    }
}
