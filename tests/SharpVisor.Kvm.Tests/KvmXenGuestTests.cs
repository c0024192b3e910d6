using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using SharpVisor.Xen;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// A tiny Xen HVM guest on real KVM Xen support: the Xen layer (<see cref="XenDomain"/>) rides on
/// KVM_CAP_XEN_HVM. Skipped, with the capability's value, where KVM lacks it (the development host:
/// KVM_CAP_XEN_HVM = 0). Nothing of KVM's part is faked.
/// </summary>
public class KvmXenGuestTests
{
    private const ulong IdtAddress = 0x9000;
    private const ulong UpcallHandlerAddress = 0x12000;
    private const ulong HypercallPageAddress = 0x20000;
    private const ulong ArgumentsAddress = 0x31000;
    private const ulong FlagAddress = 0x32000;
    private const ulong SharedInfoFrame = 0x40;
    private const byte CallbackVector = 0xF3;
    private const uint Done = 0xD0E;

    /// <summary>
    /// The guest writes the hypercall-page MSR (KVM fills the page), asks xen_version through the
    /// page and by VMCALL/VMMCALL, puts shared_info at frame 0x40, sets HVM_PARAM_CALLBACK_IRQ to a
    /// vector, binds an IPI port to itself and sends on it, then enables interrupts: the Xen layer marks
    /// the event pending and KVM, told where vcpu_info is, injects the vector. KVM also keeps the
    /// vcpu_time_info there current.
    /// </summary>
    [KvmXenFact]
    public void HypercallsReachTheXenLayerAndAnEventComesBackAsTheCallbackVector()
    {
        XenDomain? domain = null;
        bool amd = false;
        using KvmTestMachine machine = KvmTestMachine.LongMode(
            a =>
            {
                // wrmsr(0x40000000, page): KVM writes the hypercall stubs.
                a.mov(ecx, 0x4000_0000);
                a.mov(eax, (uint)HypercallPageAddress);
                a.xor(edx, edx);
                a.wrmsr();

                // xen_version(XENVER_version) through the page's stub 17, then directly.
                a.xor(edi, edi);
                a.xor(esi, esi);
                a.mov(rax, HypercallPageAddress + (17 * 32));
                a.call(rax);
                EmitOut(a);
                a.mov(eax, (uint)HypercallOp.XenVersion);
                a.xor(edi, edi);
                a.xor(esi, esi);
                a.db(0x0F, 0x01, 0xC1); // VMCALL; patched to VMMCALL for AMD below
                EmitOut(a);

                // memory_op(XENMEM_add_to_physmap, {DOMID_SELF, space shared_info, idx 0, gpfn 0x40}).
                Hypercall(a, HypercallOp.MemoryOp, 7, ArgumentsAddress);

                // hvm_op(HVMOP_set_param, {DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, vector type}).
                Hypercall(a, HypercallOp.HvmOp, 0, ArgumentsAddress + 0x100);

                // event_channel_op(EVTCHNOP_bind_ipi, {vcpu 0, port}): report the port, then send on it.
                Hypercall(a, HypercallOp.EventChannelOp, 7, ArgumentsAddress + 0x200);
                a.mov(eax, __dword_ptr[ArgumentsAddress + 0x204]);
                EmitOut(a);
                a.mov(__dword_ptr[ArgumentsAddress + 0x300], eax);
                Hypercall(a, HypercallOp.EventChannelOp, 4, ArgumentsAddress + 0x300);

                // Interrupts on: the pending upcall arrives as the callback vector.
                a.sti();
                Label wait = a.CreateLabel();
                a.Label(ref wait);
                a.pause();
                a.cmp(__byte_ptr[FlagAddress], 0);
                a.je(wait);
                a.mov(eax, Done);
                EmitOut(a);
                KvmTestMachine.EmitDebugExit(a, 0);
            },
            beforeVcpus: vm =>
            {
                amd = vm.SupportedCpuid.Any(e => e.Function == 0 && e.Ebx is 0x6874_7541 or 0x6F67_7948);
                domain = new XenDomain(vm.Memory, new XenDomainOptions { VcpuCount = 1 });
                vm.AttachHypervisorInterface(domain);
            });
        using XenDomain xen = domain!;
        if (amd)
        {
            PatchVmcallToVmmcall(machine);
        }

        WriteArguments(machine);
        machine.Memory.Write(UpcallHandlerAddress, GuestCode.Assemble(64, UpcallHandlerAddress, a =>
        {
            a.push(rax);
            a.push(rdx);
            a.mov(__byte_ptr[(SharedInfoFrame << 12) + 0], 0); // vcpu_info[0].evtchn_upcall_pending
            a.mov(eax, CallbackVector);
            EmitOut(a);
            a.mov(__byte_ptr[FlagAddress], 1);
            a.pop(rdx);
            a.pop(rax);
            a.iretq();
        }));
        WriteInterruptGate(machine, CallbackVector, UpcallHandlerAddress);
        KvmVcpu vcpu = machine.Vcpus[0];
        VcpuState state = vcpu.GetState();
        state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
        vcpu.SetState(state);

        VirtualMachineRunner runner = machine.Run(TimeSpan.FromSeconds(60));

        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        ulong[] values = machine.Output.Values;
        const ulong version = (4UL << 16) | 17;
        Assert.Equal(8, values.Length);
        Assert.Equal([version, version, 0, 0], values[..4]);
        Assert.True(values[4] > 0, $"bind_ipi gave port {values[4]}");
        Assert.Equal([0UL, CallbackVector, Done], values[5..]);

        // KVM wrote the hypercall page: stub n is "mov eax, n; vmcall|vmmcall; ret".
        byte[] stub = new byte[9];
        machine.Memory.Read(HypercallPageAddress + (17 * 32), stub);
        Assert.Equal(new byte[] { 0xB8, 17, 0, 0, 0, 0x0F, 0x01, amd ? (byte)0xD9 : (byte)0xC1, 0xC3 }, stub);

        Assert.Equal(6, vcpu.Exits["xen-hypercall"]);
        Assert.Equal(1, xen.Counters["shared-info-maps"]);

        // KVM, told where vcpu_info is, keeps its vcpu_time_info current: an even version and the
        // TSC of its last update, where the Xen layer itself writes a TSC stamp of 0.
        ulong time = (SharedInfoFrame << 12) + 0x20;
        Assert.Equal(0u, machine.Memory.Read<uint>(time) & 1);
        Assert.NotEqual(0UL, machine.Memory.Read<ulong>(time + 8));
    }

    private static void Hypercall(Assembler a, HypercallOp op, int command, ulong argument)
    {
        a.mov(edi, command);
        a.mov(esi, (uint)argument);
        a.mov(rax, HypercallPageAddress + ((ulong)op * 32));
        a.call(rax);
        EmitOut(a);
    }

    private static void WriteArguments(KvmTestMachine machine)
    {
        // struct xen_add_to_physmap { u16 domid; u16 size; u32 space; u64 idx; u64 gpfn; }
        machine.Memory.Write(ArgumentsAddress, XenDomain.DomidSelf);
        machine.Memory.Write(ArgumentsAddress + 4, 0u);
        machine.Memory.Write(ArgumentsAddress + 8, 0UL);
        machine.Memory.Write(ArgumentsAddress + 16, SharedInfoFrame);

        // struct xen_hvm_param { u16 domid; u32 index; u64 value; }: CALLBACK_IRQ (0), type 2 (vector).
        machine.Memory.Write(ArgumentsAddress + 0x100, XenDomain.DomidSelf);
        machine.Memory.Write(ArgumentsAddress + 0x104, 0u);
        machine.Memory.Write(ArgumentsAddress + 0x108, (2UL << 56) | CallbackVector);

        // struct evtchn_bind_ipi { u32 vcpu; u32 port; }
        machine.Memory.Write(ArgumentsAddress + 0x200, 0UL);
    }

    private static void PatchVmcallToVmmcall(KvmTestMachine machine)
    {
        byte[] code = new byte[0x400];
        machine.Memory.Read(LongModeTestGuest.CodeAddress, code);
        int at = code.AsSpan().IndexOf(new byte[] { 0x0F, 0x01, 0xC1 });
        Assert.True(at >= 0, "the guest's VMCALL is where it was assembled");
        machine.Memory.Write(LongModeTestGuest.CodeAddress + (ulong)at + 2, (byte)0xD9);
    }

    private static void EmitOut(Assembler a)
    {
        a.mov(dx, KvmTestMachine.OutputPort);
        a.@out(dx, eax);
    }

    private static void WriteInterruptGate(KvmTestMachine machine, byte vector, ulong handler)
    {
        ulong gate = IdtAddress + (vector * 16UL);
        machine.Memory.Write(gate, (ushort)handler);
        machine.Memory.Write(gate + 2, LongModeTestGuest.CodeSelector);
        machine.Memory.Write(gate + 4, (byte)0);
        machine.Memory.Write(gate + 5, (byte)0x8E);
        machine.Memory.Write(gate + 6, (ushort)(handler >> 16));
        machine.Memory.Write(gate + 8, (uint)(handler >> 32));
        machine.Memory.Write(gate + 12, 0u);
    }
}
