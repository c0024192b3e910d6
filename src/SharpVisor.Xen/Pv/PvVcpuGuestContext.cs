using System.Buffers.Binary;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// The x86-64 <c>struct vcpu_guest_context</c> VCPUOP_initialise hands over (public/arch-x86/xen.h),
/// read field by field from its bytes: fpu_ctxt[512], flags, user_regs (struct cpu_user_regs, 200
/// bytes), trap_ctxt[256] (16 bytes each), ldt_base/ents, gdt_frames[16]/ents, kernel_ss/sp,
/// ctrlreg[8], debugreg[8], the event/failsafe/syscall callbacks, vm_assist, fs_base,
/// gs_base_kernel, gs_base_user. Nothing here is checked: <see cref="PvCpu"/> validates it.
/// </summary>
internal sealed class PvVcpuGuestContext
{
    public const int Size = 5168;

    // VGCF_* flags.
    public const ulong FlagI387Valid = 1UL << 0;
    public const ulong FlagInKernel = 1UL << 2;
    public const ulong FlagFailsafeDisablesEvents = 1UL << 3;
    public const ulong FlagSyscallDisablesEvents = 1UL << 4;

    private const int FlagsOffset = 512;
    private const int UserRegsOffset = 520;
    private const int TrapsOffset = 720;
    private const int LdtBaseOffset = 4816;
    private const int GdtFramesOffset = 4832;
    private const int GdtEntriesOffset = 4960;
    private const int KernelSsOffset = 4968;
    private const int CtrlregOffset = 4984;
    private const int DebugregOffset = 5048;
    private const int EventCallbackOffset = 5112;
    private const int VmAssistOffset = 5136;
    private const int FsBaseOffset = 5144;

    private readonly byte[] _bytes;

    public PvVcpuGuestContext(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"a vcpu_guest_context is {Size} bytes, not {bytes.Length}", nameof(bytes));
        }

        _bytes = bytes.ToArray();
    }

    public ulong Flags => Q(FlagsOffset);

    // struct cpu_user_regs: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi (8 bytes each),
    // error_code, entry_vector (4 each), rip, cs (+pad, saved_upcall_mask), rflags, rsp, ss, es, ds, fs, gs.
    public ulong R15 => Q(UserRegsOffset);

    public ulong R14 => Q(UserRegsOffset + 8);

    public ulong R13 => Q(UserRegsOffset + 16);

    public ulong R12 => Q(UserRegsOffset + 24);

    public ulong Rbp => Q(UserRegsOffset + 32);

    public ulong Rbx => Q(UserRegsOffset + 40);

    public ulong R11 => Q(UserRegsOffset + 48);

    public ulong R10 => Q(UserRegsOffset + 56);

    public ulong R9 => Q(UserRegsOffset + 64);

    public ulong R8 => Q(UserRegsOffset + 72);

    public ulong Rax => Q(UserRegsOffset + 80);

    public ulong Rcx => Q(UserRegsOffset + 88);

    public ulong Rdx => Q(UserRegsOffset + 96);

    public ulong Rsi => Q(UserRegsOffset + 104);

    public ulong Rdi => Q(UserRegsOffset + 112);

    public ulong Rip => Q(UserRegsOffset + 128);

    public ushort Cs => W(UserRegsOffset + 136);

    public ulong Rflags => Q(UserRegsOffset + 144);

    public ulong Rsp => Q(UserRegsOffset + 152);

    public ushort Ss => W(UserRegsOffset + 160);

    public ushort Es => W(UserRegsOffset + 168);

    public ushort Ds => W(UserRegsOffset + 176);

    public ushort Fs => W(UserRegsOffset + 184);

    public ushort Gs => W(UserRegsOffset + 192);

    /// <summary>trap_ctxt[i]: Xen indexes the virtual IDT by position (the entry's vector field is not used).</summary>
    public (byte Flags, ulong Address) Trap(int index) => (_bytes[TrapsOffset + (index * 16) + 1], Q(TrapsOffset + (index * 16) + 8));

    public ulong LdtBase => Q(LdtBaseOffset);

    public ulong LdtEntries => Q(LdtBaseOffset + 8);

    public ulong GdtFrame(int index) => Q(GdtFramesOffset + (index * 8));

    public ulong GdtEntries => Q(GdtEntriesOffset);

    public ulong KernelSs => Q(KernelSsOffset);

    public ulong KernelSp => Q(KernelSsOffset + 8);

    /// <summary>ctrlreg[n]: [3] the kernel L4 (xen_pfn_to_cr3: the mfn shifted left by 12), [1] the user L4 in the same form (0: none).</summary>
    public ulong ControlRegister(int index) => Q(CtrlregOffset + (index * 8));

    public ulong DebugRegister(int index) => Q(DebugregOffset + (index * 8));

    public ulong EventCallback => Q(EventCallbackOffset);

    public ulong FailsafeCallback => Q(EventCallbackOffset + 8);

    public ulong SyscallCallback => Q(EventCallbackOffset + 16);

    public ulong VmAssist => Q(VmAssistOffset);

    public ulong FsBase => Q(FsBaseOffset);

    public ulong GsBaseKernel => Q(FsBaseOffset + 8);

    public ulong GsBaseUser => Q(FsBaseOffset + 16);

    private ulong Q(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(_bytes.AsSpan(offset));

    private ushort W(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(offset));
}
