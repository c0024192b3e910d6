using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Pv;

/// <summary>The PV-only hypercalls: trap table, callbacks, stacks, segment bases, FPU switch, GDT, debug registers, multicall.</summary>
public sealed partial class PvCpu
{
    // callback_op / set_callbacks
    private const int CallbackOpRegister = 0;
    private const int CallbackOpUnregister = 1;
    private const int CallbackEvent = 0;
    private const int CallbackFailsafe = 1;
    private const int CallbackSyscall = 2;
    private const int CallbackNmi = 4;
    private const int CallbackSyscall32 = 7;
    private const ushort CallbackMaskEvents = 1;

    // set_segment_base
    private const int SegbaseFs = 0;
    private const int SegbaseGsUser = 1;
    private const int SegbaseGsKernel = 2;
    private const int SegbaseGsUserSelector = 3;

    // vm_assist
    private const ulong VmassistEnable = 0;          // VMASST_CMD_enable; 1 is disable
    private const int VmassistWritablePageTables = 2;
    private const int VmassistLast = 6;

    private const int PhysdevSetIopl = 6;

    /// <summary>The ops this class answers for a PV domain (the rest go to <see cref="XenDomain"/>'s dispatcher).</summary>
    internal static bool Handles(HypercallOp op) => op is HypercallOp.SetTrapTable or HypercallOp.SetGdt or HypercallOp.StackSwitch
        or HypercallOp.SetCallbacks or HypercallOp.FpuTaskswitch or HypercallOp.SetDebugreg or HypercallOp.GetDebugreg
        or HypercallOp.UpdateDescriptor or HypercallOp.Multicall or HypercallOp.VmAssist or HypercallOp.SetSegmentBase
        or HypercallOp.CallbackOp or HypercallOp.PhysdevOp or HypercallOp.Iret;

    internal long Dispatch(HypercallFrame frame, HypercallOp op)
    {
        PvVcpuState vcpu = _vcpus[frame.VcpuId];
        IParavirtualCpuContext? cpu = frame.Context as IParavirtualCpuContext ?? (frame.Context as MulticallEntry)?.Cpu;
        return op switch
        {
            HypercallOp.SetTrapTable => SetTrapTable(frame, vcpu),
            HypercallOp.SetGdt => cpu is null ? -XenErrno.EINVAL : SetGdt(frame, vcpu, cpu),
            HypercallOp.StackSwitch => StackSwitch(frame, vcpu),
            HypercallOp.SetCallbacks => SetCallbacks(frame, vcpu),
            HypercallOp.FpuTaskswitch => FpuTaskswitch(frame, cpu),
            HypercallOp.SetDebugreg => SetDebugRegister(frame, vcpu),
            HypercallOp.GetDebugreg => GetDebugRegister(frame, vcpu),
            HypercallOp.UpdateDescriptor => UpdateDescriptor(frame),
            HypercallOp.Multicall => cpu is null || frame.Context is MulticallEntry ? -XenErrno.EINVAL : Multicall(frame, cpu),
            HypercallOp.VmAssist => VmAssist(frame),
            HypercallOp.SetSegmentBase => cpu is null ? -XenErrno.EINVAL : SetSegmentBase(frame, cpu),
            HypercallOp.CallbackOp => CallbackOp(frame, vcpu),
            HypercallOp.PhysdevOp => PhysdevOp(frame, vcpu),
            _ => -XenErrno.EINVAL,   // iret only by SYSCALL, never from a multicall
        };
    }

    /// <summary>set_trap_table(traps[]): { u8 vector, u8 flags, u16 cs, u64 address } entries up to one with address 0; NULL clears the table.</summary>
    private static long SetTrapTable(HypercallFrame frame, PvVcpuState vcpu)
    {
        ulong traps = frame.Argument(0);
        if (traps == 0)
        {
            Array.Clear(vcpu.Traps);
            return 0;
        }

        for (int i = 0; i < 256; i++)
        {
            byte vector = frame.Read<byte>(traps + ((ulong)i * 16));
            byte flags = frame.Read<byte>(traps + ((ulong)i * 16) + 1);
            ulong address = frame.Read<ulong>(traps + ((ulong)i * 16) + 8);
            if (address == 0)
            {
                break;
            }

            if (!IsCanonical(address))
            {
                throw new XenException(XenErrno.EINVAL, $"trap {vector} handler 0x{address:x} is not canonical");
            }

            vcpu.Traps[vector] = (address, flags);
        }

        return 0;
    }

    private static long StackSwitch(HypercallFrame frame, PvVcpuState vcpu)
    {
        vcpu.KernelStackSegment = (ushort)(frame.Argument(0) | 3);
        vcpu.KernelStack = frame.Argument(1);
        return 0;
    }

    /// <summary>set_callbacks(event, failsafe, syscall) — the 64-bit form.</summary>
    private static long SetCallbacks(HypercallFrame frame, PvVcpuState vcpu)
    {
        ulong evt = frame.Argument(0), failsafe = frame.Argument(1), syscall = frame.Argument(2);
        if (!IsCanonical(evt) || !IsCanonical(failsafe) || !IsCanonical(syscall))
        {
            throw new XenException(XenErrno.EINVAL, "a callback address is not canonical");
        }

        vcpu.EventCallback = evt;
        vcpu.FailsafeCallback = failsafe;
        vcpu.FailsafeMasksEvents = false;      // register_guest_callback with no flags, as do_set_callbacks
        vcpu.SyscallCallback = syscall;
        return 0;
    }

    /// <summary>callback_op(register|unregister, struct callback_register { u16 type; u16 flags; u64 address; }).</summary>
    private static long CallbackOp(HypercallFrame frame, PvVcpuState vcpu)
    {
        int command = frame.IntArgument(0);
        ulong arg = frame.Argument(1);
        ushort type = frame.Read<ushort>(arg);
        if (command == CallbackOpUnregister)
        {
            return type switch
            {
                CallbackNmi or CallbackSyscall32 => 0,
                _ => -XenErrno.EINVAL,       // Xen will not unregister the event, failsafe or syscall callbacks
            };
        }

        if (command != CallbackOpRegister)
        {
            return -XenErrno.ENOSYS;
        }

        ushort flags = frame.Read<ushort>(arg + 2);
        ulong address = frame.Read<ulong>(arg + 8);
        if (!IsCanonical(address))
        {
            throw new XenException(XenErrno.EINVAL, $"callback 0x{address:x} is not canonical");
        }

        switch (type)
        {
            case CallbackEvent:
                vcpu.EventCallback = address;
                return 0;
            case CallbackFailsafe:
                vcpu.FailsafeCallback = address;
                vcpu.FailsafeMasksEvents = (flags & CallbackMaskEvents) != 0;
                return 0;
            case CallbackSyscall:
                vcpu.SyscallCallback = address;
                vcpu.SyscallMasksEvents = (flags & CallbackMaskEvents) != 0;
                return 0;
            case CallbackSyscall32:
            case CallbackNmi:
                return 0;                    // no 32-bit user mode and no virtual NMIs here
            default:
                return -XenErrno.EINVAL;
        }
    }

    private static long FpuTaskswitch(HypercallFrame frame, IParavirtualCpuContext? cpu)
    {
        if (cpu is not null)
        {
            cpu.TaskSwitched = frame.Argument(0) != 0;
        }

        return 0;
    }

    private static long SetDebugRegister(HypercallFrame frame, PvVcpuState vcpu)
    {
        ulong reg = frame.Argument(0);
        ulong value = frame.Argument(1);
        if (reg is 4 or 5 or > 7 || (reg < 4 && !IsCanonical(value)))
        {
            return -XenErrno.EINVAL;
        }

        vcpu.DebugRegisters[reg] = value;
        return 0;
    }

    private static long GetDebugRegister(HypercallFrame frame, PvVcpuState vcpu)
    {
        ulong reg = frame.Argument(0);
        return reg is 4 or 5 or > 7 ? -XenErrno.EINVAL : (long)vcpu.DebugRegisters[reg];
    }

    /// <summary>vm_assist(enable|disable, type): writable page tables switch the ptwr emulation; the others change nothing on 64-bit.</summary>
    private long VmAssist(HypercallFrame frame)
    {
        ulong command = frame.Argument(0), type = frame.Argument(1);
        if (command > 1 || type > VmassistLast)
        {
            return -XenErrno.EINVAL;
        }

        if (type == VmassistWritablePageTables)
        {
            _writablePageTables = command == VmassistEnable;
        }

        return 0;
    }

    /// <summary>set_segment_base(which, base): FS, the user GS (kept in the shadow while the kernel runs), the kernel GS, or the user GS selector.</summary>
    private static long SetSegmentBase(HypercallFrame frame, IParavirtualCpuContext cpu)
    {
        int which = frame.IntArgument(0);
        ulong value = frame.Argument(1);
        switch (which)
        {
            case SegbaseFs when IsCanonical(value):
                cpu.FsBase = value;
                return 0;
            case SegbaseGsUser when IsCanonical(value):
                cpu.KernelGsBase = value;
                return 0;
            case SegbaseGsKernel when IsCanonical(value):
                cpu.GsBase = value;
                return 0;
            case SegbaseGsUserSelector:
            {
                // swapgs; mov gs, selector (null on a fault, as Xen's fixup); swapgs
                (cpu.GsBase, cpu.KernelGsBase) = (cpu.KernelGsBase, cpu.GsBase);
                if (!cpu.TryLoadSegment(ParavirtualSegment.Gs, (ushort)value))
                {
                    cpu.TryLoadSegment(ParavirtualSegment.Gs, 0);
                }

                (cpu.GsBase, cpu.KernelGsBase) = (cpu.KernelGsBase, cpu.GsBase);
                return 0;
            }

            default:
                return -XenErrno.EINVAL;
        }
    }

    /// <summary>physdev_op: set_iopl only (a domU has no devices to route).</summary>
    private long PhysdevOp(HypercallFrame frame, PvVcpuState vcpu)
    {
        int command = frame.IntArgument(0);
        if (command != PhysdevSetIopl)
        {
            _domain.Counters.Increment($"enosys-PhysdevOp:{command}");
            return -XenErrno.ENOSYS;
        }

        uint iopl = frame.Read<uint>(frame.Argument(1));
        if (iopl > 3)
        {
            return -XenErrno.EINVAL;
        }

        vcpu.Iopl = (int)iopl;
        return 0;
    }

    /// <summary>multicall(entries[], count): each { op, result, args[6] } (64 bytes) run in order; every result written back.</summary>
    private long Multicall(HypercallFrame frame, IParavirtualCpuContext cpu)
    {
        ulong entries = frame.Argument(0);
        int count = HypercallFrame.CheckLength(frame.Argument(1), 4096);
        for (int i = 0; i < count; i++)
        {
            ulong at = entries + ((ulong)i * 64);
            var call = new MulticallEntry(cpu, frame.Read<ulong>(at), [.. Enumerable.Range(0, 5).Select(a => frame.Read<ulong>(at + 16 + ((ulong)a * 8)))]);
            _domain.RunPvHypercall(call);
            frame.Write(at + 8, call.Result);
        }

        return 0;
    }

    private static bool IsCanonical(ulong address) => (ulong)((long)(address << 16) >> 16) == address;

    /// <summary>One entry of a multicall as a hypercall context: its op and arguments, the caller's memory.</summary>
    internal sealed class MulticallEntry : IHypercallContext
    {
        private static readonly int[] s_argumentRegisters = [7, 6, 2, 10, 8];
        private readonly ulong[] _registers = new ulong[16];

        public MulticallEntry(IParavirtualCpuContext cpu, ulong op, ulong[] arguments)
        {
            Cpu = cpu;
            _registers[0] = op;
            for (int i = 0; i < arguments.Length; i++)
            {
                _registers[s_argumentRegisters[i]] = arguments[i];
            }
        }

        public IParavirtualCpuContext Cpu { get; }

        public ulong Result => _registers[0];

        public int VcpuId => Cpu.VcpuId;

        public bool LongMode => true;

        public int Cpl => 0;

        public ulong GetRegister(int index) => _registers[index];

        public void SetRegister(int index, ulong value) => _registers[index] = value;

        public bool TryReadVirtual(ulong address, Span<byte> destination) => Cpu.TryReadVirtual(address, destination);

        public bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source) => Cpu.TryWriteVirtual(address, source);

        public void Halt() => Cpu.Halt();
    }
}
