namespace SharpVisor.Xen.Pv;

/// <summary>
/// What Xen keeps for one PV vCPU beyond its registers: guest kernel or user mode, the virtual
/// IDT (the trap table), the callbacks, the kernel stack for entries from user mode, the GDT
/// frames, the debug registers.
/// </summary>
internal sealed class PvVcpuState
{
    public PvVcpuState(int id) => Id = id;

    public int Id { get; }

    /// <summary>Xen's TF_kernel_mode: the guest kernel runs (CPL 3 either way; the page tables differ).</summary>
    public bool KernelMode { get; set; } = true;

    /// <summary>set_trap_table: per vector the handler's address and flags (bits 0-1: DPL, bit 2: mask events).</summary>
    public (ulong Address, byte Flags)[] Traps { get; } = new (ulong, byte)[256];

    public ulong EventCallback { get; set; }

    public ulong FailsafeCallback { get; set; }

    /// <summary>VGCF_failsafe_disables_events (CALLBACKF_mask_events at registration): the failsafe callback is entered with events masked.</summary>
    public bool FailsafeMasksEvents { get; set; }

    /// <summary>
    /// The DS, ES, FS and GS selectors of VCPUOP_initialise's context when one of them did not load
    /// (the start state holds those null): Xen's load_segments at the vCPU's first context switch
    /// then bounces to the failsafe callback with them.
    /// </summary>
    public ushort[]? PendingFailsafeSegments { get; set; }

    public ulong SyscallCallback { get; set; }

    public bool SyscallMasksEvents { get; set; }

    /// <summary>stack_switch: where an entry from user mode puts its frame.</summary>
    public ulong KernelStack { get; set; }

    public ushort KernelStackSegment { get; set; }

    /// <summary>The guest's GDT frames (set_gdt), each holding a SegmentDescriptor type reference.</summary>
    public ulong[] GdtFrames { get; set; } = [];

    public int GdtEntries { get; set; }

    public ulong[] DebugRegisters { get; } = new ulong[8];

    /// <summary>The CR4 bits the guest wrote that it controls (TSD, DE, FSGSBASE, OSXSAVE): Xen's ctrlreg[4] beyond the visible ones.</summary>
    public ulong GuestCr4 { get; set; }

    /// <summary>
    /// VCPUOP_initialise's inactive GS base (gs_base_user in kernel mode), which the start state
    /// cannot carry: loaded on the vCPU's first entry into the PV CPU, before any mode switch reads it.
    /// </summary>
    public ulong? PendingShadowGsBase { get; set; }

    /// <summary>physdev_op set_iopl: the virtual I/O privilege level.</summary>
    public int Iopl { get; set; }
}
