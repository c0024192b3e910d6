using SharpVisor.Machine;
using SharpVisor.Machine.Protection;
using SharpVisor.Memory;

namespace SharpVisor.Kvm;

/// <summary>
/// A KVM vCPU as the protection monitor sees it while deciding to lock: its registers read with
/// KVM_GET_SREGS/KVM_GET_MSRS and a 4-level page walk over guest memory that sets no accessed or
/// dirty bits (KVM_TRANSLATE reports every page writable, so it cannot answer "read-only yet?").
/// </summary>
internal sealed class KvmProtectionLockContext : IProtectionLockContext
{
    private const ulong Present = 1UL << 0;
    private const ulong Writable = 1UL << 1;
    private const ulong LargePage = 1UL << 7;
    private const ulong AddressMask = 0x000F_FFFF_FFFF_F000;
    private const ulong Cr4La57 = 1UL << 12;

    private readonly GuestMemory _memory;

    public KvmProtectionLockContext(KvmVcpu vcpu, GuestMemory memory)
    {
        _memory = memory;
        VcpuState state = vcpu.GetState();
        ulong[] msrs = vcpu.ReadMsrs(0xC000_0082, 0x176);
        VcpuId = vcpu.Id;
        Cr0 = state.Cr0;
        Cr3 = state.Cr3;
        Cr4 = state.Cr4;
        Efer = state.Efer;
        Lstar = msrs[0];
        SysenterEip = msrs[1];
        IdtBase = state.Idt.Base;
        IdtLimit = state.Idt.Limit;
    }

    public int VcpuId { get; }

    public ulong Cr0 { get; }

    public ulong Cr3 { get; }

    public ulong Cr4 { get; }

    public ulong Efer { get; }

    public ulong Lstar { get; }

    public ulong SysenterEip { get; }

    public ulong IdtBase { get; }

    public ushort IdtLimit { get; }

    public bool TryTranslate(ulong linear, out ulong physicalAddress, out bool writable)
    {
        physicalAddress = 0;
        writable = false;
        if ((Cr0 & VcpuState.Cr0Paging) == 0 || (Efer & VcpuState.EferLongModeActive) == 0 || (Cr4 & Cr4La57) != 0)
        {
            return false; // the lock is for a 4-level long-mode kernel
        }

        ulong table = Cr3 & AddressMask;
        bool allWritable = true;
        for (int level = 3; level >= 0; level--)
        {
            ulong entryAddress = table + (((linear >> (12 + (9 * level))) & 0x1FF) * 8);
            if (!_memory.IsValid(entryAddress, 8))
            {
                return false;
            }

            ulong entry = _memory.Read<ulong>(entryAddress);
            if ((entry & Present) == 0)
            {
                return false;
            }

            allWritable &= (entry & Writable) != 0;
            if (level is 1 or 2 && (entry & LargePage) != 0)
            {
                ulong pageMask = (1UL << (12 + (9 * level))) - 1;
                physicalAddress = (entry & AddressMask & ~pageMask) | (linear & pageMask);
                writable = allWritable;
                return true;
            }

            table = entry & AddressMask;
            if (level == 0)
            {
                physicalAddress = table | (linear & 0xFFF);
                writable = allWritable;
                return true;
            }
        }

        return false;
    }
}
