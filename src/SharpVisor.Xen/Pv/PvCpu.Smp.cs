using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// PV SMP: VCPUOP_initialise's context checked and turned into a secondary vCPU's PV state and its
/// start registers (Xen's arch_set_info_guest for a 64-bit PV vCPU), and TLB flushes that reach
/// the other vCPUs.
/// </summary>
public sealed partial class PvCpu
{
    private const ulong Cr0TaskSwitched = 1UL << 3;

    /// <summary>VMASST_TYPE_* a 64-bit PV domain may name: 4gb_segments(_notify), writable_pagetables, pae_extended_cr3, architectural_iopl, runstate_update_flag, m2p_strict.</summary>
    private const ulong VmAssistValid = 0x3FUL | (1UL << 32);

    /// <summary>
    /// VCPUOP_initialise for vCPU <paramref name="vcpuId"/> (not yet initialised): every field of
    /// <paramref name="context"/> is checked here, in one place, with Xen's errno — canonical
    /// addresses (registers, callbacks, trap handlers, LDT, segment bases, kernel stack), the LDT's
    /// alignment and size, the GDT's size, frames and descriptors, the selectors resolvable in that
    /// GDT (CS a 64-bit code segment, SS writable data; RPL forced to 3 as Xen's fixup does; DS, ES,
    /// FS and GS are Xen's to try at the first context switch, LoadSegmentsAtStart), the
    /// page tables (ctrlreg[3] a valid L4, ctrlreg[1] a valid user L4 or 0), the debug registers and
    /// vm_assist. Only then does it take the GDT frames' and L4s' type references and set the vCPU's
    /// PV state; <paramref name="state"/> is what the vCPU starts with at VCPUOP_up.
    /// </summary>
    internal long InitialiseVcpu(int vcpuId, PvVcpuGuestContext context, out VcpuState? state)
    {
        state = null;
        PvVcpuState vcpu = _vcpus[vcpuId];
        if ((context.Flags & PvVcpuGuestContext.FlagI387Valid) != 0)
        {
            // The start state carries no FPU image; Linux passes none (its context is zeroed).
            return Refuse("fpu", XenErrno.EOPNOTSUPP, "an FPU image in the context is not loaded here");
        }

        ulong[] addresses =
        [
            context.Rip, context.Rsp, context.KernelSp, context.FsBase, context.GsBaseKernel, context.GsBaseUser,
            context.EventCallback, context.FailsafeCallback, context.SyscallCallback, context.LdtEntries != 0 ? context.LdtBase : 0,
        ];
        if (addresses.Any(a => !IsCanonical(a)) || Enumerable.Range(0, 256).Any(i => !IsCanonical(context.Trap(i).Address)))
        {
            return Refuse("address", XenErrno.EINVAL, "an address in the context is not canonical");
        }

        if ((context.LdtBase & 0xFFF) != 0 || context.LdtEntries > 8192)
        {
            return Refuse("ldt", XenErrno.EINVAL, $"LDT 0x{context.LdtBase:x} with {context.LdtEntries} entries");
        }

        if (context.GdtEntries > GuestGdtEntries)
        {
            return Refuse("gdt-size", XenErrno.EINVAL, $"{context.GdtEntries} GDT entries");
        }

        for (int i = 0; i < 8; i++)
        {
            if (i is 4 or 5 ? context.DebugRegister(i) != 0 : i < 4 && !IsCanonical(context.DebugRegister(i)))
            {
                return Refuse("debugreg", XenErrno.EINVAL, $"debug register {i} = 0x{context.DebugRegister(i):x}");
            }
        }

        if ((context.VmAssist & ~VmAssistValid) != 0)
        {
            return Refuse("vm-assist", XenErrno.EINVAL, $"vm_assist 0x{context.VmAssist:x}");
        }

        bool kernelMode = (context.Flags & PvVcpuGuestContext.FlagInKernel) != 0;
        ulong kernelL4 = context.ControlRegister(3) >> 12;
        ulong userL4 = context.ControlRegister(1) >> 12;
        if (!kernelMode && userL4 == 0)
        {
            return Refuse("user-mode", XenErrno.EINVAL, "a start in user mode without user page tables");
        }

        // The references: the GDT frames, then the user and kernel L4s; each failure undoes the earlier ones.
        var frames = new ulong[(int)((context.GdtEntries + 511) / 512)];
        for (int i = 0; i < frames.Length; i++)
        {
            frames[i] = context.GdtFrame(i);
        }

        int rc = TakeGdtFrames(frames, out ulong[] copies);
        if (rc != 0)
        {
            return Refuse("gdt", -rc, "a GDT frame is not the domain's or holds a descriptor Xen refuses");
        }

        SegmentRegister cs = default, ss = default;
        bool selectorsOk = TryResolve(context.Cs, copies, (int)context.GdtEntries, SelectorUse.Code, out cs)
            && TryResolve(context.Ss, copies, (int)context.GdtEntries, SelectorUse.Stack, out ss);

        // DS, ES, FS, GS are not checked by Xen: one that does not load is null at the start and
        // the vCPU's first context switch bounces to the failsafe callback (LoadSegmentsAtStart).
        ushort[] dataSelectors = [context.Ds, context.Es, context.Fs, context.Gs];
        var data = new SegmentRegister[4];
        bool dataOk = true;
        for (int i = 0; i < data.Length; i++)
        {
            if (!TryResolve(dataSelectors[i], copies, (int)context.GdtEntries, SelectorUse.Data, out data[i]))
            {
                data[i] = new SegmentRegister { Type = 0x3, Limit = 0xFFFF, Unusable = true };
                dataOk = false;
            }
        }

        (SegmentRegister ds, SegmentRegister es, SegmentRegister fs, SegmentRegister gs) = (data[0], data[1], data[2], data[3]);
        PvVcpuPaging paging = _domain.PvPaging(vcpuId);
        if (selectorsOk && userL4 != 0)
        {
            rc = _tables.MmuextOp(paging, PvMmuextCommand.NewUserBaseptr, userL4, 0);
        }

        if (selectorsOk && rc == 0)
        {
            rc = _tables.MmuextOp(paging, PvMmuextCommand.NewBaseptr, kernelL4, 0);
            if (rc != 0 && userL4 != 0)
            {
                _tables.MmuextOp(paging, PvMmuextCommand.NewUserBaseptr, 0, 0);
            }
        }

        if (!selectorsOk || rc != 0)
        {
            foreach (ulong f in frames)
            {
                _tables.PutTypeReference(f);
            }

            return Refuse(!selectorsOk ? "selector" : "cr3", !selectorsOk ? XenErrno.EINVAL : -rc,
                !selectorsOk ? "a selector of the context is not loadable from its GDT" : $"ctrlreg[3] 0x{context.ControlRegister(3):x} / ctrlreg[1] 0x{context.ControlRegister(1):x} is not a valid L4");
        }

        // Accepted: the vCPU's PV state.
        InstallGdt(vcpu, frames, (int)context.GdtEntries, copies);
        for (int i = 0; i < 256; i++)
        {
            (byte flags, ulong address) = context.Trap(i);
            vcpu.Traps[i] = (address, flags);
        }

        vcpu.EventCallback = context.EventCallback;
        vcpu.FailsafeCallback = context.FailsafeCallback;
        vcpu.FailsafeMasksEvents = (context.Flags & PvVcpuGuestContext.FlagFailsafeDisablesEvents) != 0;
        vcpu.PendingFailsafeSegments = dataOk ? null : dataSelectors;
        vcpu.SyscallCallback = context.SyscallCallback;
        vcpu.SyscallMasksEvents = (context.Flags & PvVcpuGuestContext.FlagSyscallDisablesEvents) != 0;
        vcpu.KernelStack = context.KernelSp;
        vcpu.KernelStackSegment = (ushort)(context.KernelSs | 3);
        for (int i = 0; i < 8; i++)
        {
            vcpu.DebugRegisters[i] = context.DebugRegister(i);
        }

        vcpu.Iopl = (int)((context.Rflags >> 12) & 3);
        vcpu.KernelMode = kernelMode;
        vcpu.PendingShadowGsBase = kernelMode ? context.GsBaseUser : context.GsBaseKernel;
        paging.LdtBase = context.LdtEntries == 0 ? 0 : context.LdtBase;
        paging.LdtEntries = (uint)context.LdtEntries;

        fs.Base = context.FsBase;
        gs.Base = kernelMode ? context.GsBaseKernel : context.GsBaseUser;
        state = new VcpuState
        {
            Rax = context.Rax, Rbx = context.Rbx, Rcx = context.Rcx, Rdx = context.Rdx,
            Rsi = context.Rsi, Rdi = context.Rdi, Rsp = context.Rsp, Rbp = context.Rbp,
            R8 = context.R8, R9 = context.R9, R10 = context.R10, R11 = context.R11,
            R12 = context.R12, R13 = context.R13, R14 = context.R14, R15 = context.R15,
            Rip = context.Rip,
            Rflags = (context.Rflags & FlagsUserSettable & ~(FlagsIopl | (1UL << 17))) | FlagsInterrupt | 2,
            Cs = cs,
            Ss = ss,
            Ds = ds,
            Es = es,
            Fs = fs,
            Gs = gs,
            Tr = new SegmentRegister { Type = 0xB, Limit = 0, Unusable = true },
            Ldt = new SegmentRegister { Type = 0x2, Limit = 0xFFFF, Unusable = true },
            Gdt = new DescriptorTable(GdtBase(vcpuId), 0xFFFF),
            Idt = new DescriptorTable(0, 0),
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0MonitorCoprocessor | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError
                | VcpuState.Cr0WriteProtect | VcpuState.Cr0Paging | (context.ControlRegister(0) & Cr0TaskSwitched),
            Cr3 = (kernelMode ? kernelL4 : userL4) << 12,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt,
            Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferNoExecute | VcpuState.EferSyscall,
        };
        _domain.Counters.Increment("pv-vcpu-initialised");
        return 0;
    }

    private enum SelectorUse
    {
        Code,
        Stack,
        Data,
    }

    /// <summary>
    /// A selector of the context as the vCPU will hold it: RPL forced to 3 (Xen's fixup), the
    /// descriptor from the checked GDT copy or Xen's reserved page; a null data selector is unusable.
    /// </summary>
    private static bool TryResolve(ushort selector, ulong[] copies, int entries, SelectorUse use, out SegmentRegister segment)
    {
        segment = new SegmentRegister { Selector = selector, Type = 0x3, Limit = 0xFFFF, Unusable = true };
        if ((selector & ~3) == 0)
        {
            return use == SelectorUse.Data;
        }

        selector |= 3;
        int index = selector >> 3;
        ulong descriptor;
        if ((selector & 4) != 0)
        {
            return false;                                   // no LDT is ever loadable (docs/xen-pv.md)
        }
        else if (index < entries)
        {
            descriptor = copies[index];
        }
        else if (index is >= GuestGdtEntries + 4 and <= GuestGdtEntries + 6)
        {
            descriptor = index switch
            {
                GuestGdtEntries + 4 => 0x00CF_FB00_0000_FFFFUL,
                GuestGdtEntries + 5 => 0x00CF_F300_0000_FFFFUL,
                _ => 0x00AF_FB00_0000_FFFFUL,
            };
        }
        else
        {
            return false;
        }

        segment = SegmentRegister.FromDescriptor(selector, descriptor);
        bool code = segment.CodeOrData && (segment.Type & 8) != 0;
        return segment.Present && segment.Dpl == 3 && use switch
        {
            SelectorUse.Code => code && segment.Long && !segment.DefaultBig,
            SelectorUse.Stack => segment.CodeOrData && !code && (segment.Type & 2) != 0,
            _ => segment.CodeOrData && (!code || (segment.Type & 2) != 0),
        };
    }

    private long Refuse(string reason, int errno, string why)
    {
        _tables.Counters.Increment($"pv-refused-vcpu-context-{reason}");
        _domain.LogPv($"VCPUOP_initialise refused (-{errno}): {why}");
        return -errno;
    }

    /// <summary>The vCPU's first entry into the PV CPU: what the start state could not carry.</summary>
    private static void TakePendingStart(IParavirtualCpuContext cpu, PvVcpuState vcpu)
    {
        if (vcpu.PendingShadowGsBase is ulong shadow)
        {
            cpu.KernelGsBase = shadow;
            vcpu.PendingShadowGsBase = null;
        }
    }

    /// <summary>A flush for every vCPU: this one's TLB here, the others' through the accelerator (they may be running).</summary>
    private void FlushEverywhere(ulong? linearAddress)
    {
        if (t_current is { } cpu)
        {
            if (linearAddress is ulong va)
            {
                cpu.FlushTlbPage(va);
            }
            else
            {
                cpu.FlushTlb();
            }
        }

        _domain.FlushOtherVcpus(t_current?.VcpuId ?? -1);
    }
}
