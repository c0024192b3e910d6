using System.Collections.Concurrent;
using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Machine.Protection;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// Kernel protection on KVM (docs/security.md): a tiny long-mode guest sets EFER.NXE and LSTAR,
/// asks for the lock and waits for it (the monitor locks from the KVM lock poll at an exit, as for
/// Linux), then writes a protected page, rewrites LSTAR with the same and another value and clears
/// EFER.NXE. Protected: the page keeps its byte, LSTAR and NXE stay, each attempt is reported and
/// the MSR writes get #GP. Unprotected, the same guest changes all of them.
/// </summary>
public class KvmProtectionTests
{
    private const ulong IdtAddress = 0x9000;
    private const ulong GeneralProtectionHandlerAddress = 0x12000;
    private const ulong ProtectedPage = 0x20000;
    private const ushort LockPort = 0x18; // not 0x20: the in-kernel PIC answers there
    private const uint MsrEfer = 0xC000_0080;
    private const uint MsrLstar = 0xC000_0082;
    private const uint EferNxe = 1 << 11;
    private const uint PinnedLstar = 0x1111;
    private const uint OtherLstar = 0x2222;
    private const uint GeneralProtectionMarker = 0x6D;
    private const uint SameValueMarker = 0xA1;

    [KvmFact]
    public void AProtectedPageAndPinnedMsrsAreRefusedAndReportedAndChangeWithoutProtection()
    {
        (ulong[] protectedRun, LockingMonitor monitor) = RunAttackGuest(protect: true, enforce: true);

        // The byte stays 0; a same-value LSTAR write passes; LSTAR 0x2222 and clearing NXE are #GP.
        Assert.Equal([0UL, SameValueMarker, GeneralProtectionMarker, PinnedLstar, GeneralProtectionMarker, EferNxe], protectedRun);
        Assert.Equal(PinnedLstar, monitor.LockedLstar);
        Assert.True(monitor.ProtectedPageWasWritable, "the lock context's page walk found the identity-mapped page");
        ProtectionViolation[] violations = monitor.Violations.ToArray();
        Assert.Equal(3, violations.Length);
        Assert.Equal((ProtectionViolationKind.KernelWrite, ProtectedPage, 0x55UL, true), (violations[0].Kind, violations[0].Target, violations[0].Value, violations[0].Blocked));
        Assert.Equal((ProtectionViolationKind.ModelSpecificRegister, (ulong)MsrLstar, (ulong)OtherLstar), (violations[1].Kind, violations[1].Target, violations[1].Value));
        Assert.Equal((ProtectionViolationKind.ModelSpecificRegister, (ulong)MsrEfer), (violations[2].Kind, violations[2].Target));
        Assert.All(violations, v => Assert.NotEqual(0UL, v.Rip));

        (ulong[] unprotectedRun, _) = RunAttackGuest(protect: false, enforce: true);
        Assert.Equal([0x55UL, SameValueMarker, OtherLstar, 0UL], unprotectedRun);
    }

    [KvmFact]
    public void LogModeReportsEachAttemptAndLetsItThrough()
    {
        (ulong[] values, LockingMonitor monitor) = RunAttackGuest(protect: true, enforce: false);

        Assert.Equal([0x55UL, SameValueMarker, OtherLstar, 0UL], values);
        Assert.True(monitor.Violations.Count == 3, string.Join("; ", monitor.Violations));
        Assert.All(monitor.Violations, v => Assert.False(v.Blocked));
    }

    private static (ulong[] Values, LockingMonitor Monitor) RunAttackGuest(bool protect, bool enforce)
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            // EFER.NXE on, LSTAR = 0x1111, then the lock and a wait until the VMM says it is locked.
            ChangeMsr(a, MsrEfer, orLow: EferNxe);
            WriteMsr(a, MsrLstar, PinnedLstar);
            a.mov(dx, LockPort);
            a.@out(dx, al);
            Label wait = a.CreateLabel();
            a.Label(ref wait);
            a.@in(al, dx);
            a.test(al, al);
            a.jz(wait);

            // A store to the protected page, then what the page holds.
            a.mov(rbx, ProtectedPage);
            a.mov(__byte_ptr[rbx], 0x55);
            a.movzx(eax, __byte_ptr[rbx]);
            EmitOut(a);

            WriteMsr(a, MsrLstar, PinnedLstar);
            a.mov(eax, SameValueMarker);
            EmitOut(a);

            WriteMsr(a, MsrLstar, OtherLstar);
            a.mov(ecx, MsrLstar);
            a.rdmsr();
            EmitOut(a);

            ChangeMsr(a, MsrEfer, andLow: ~EferNxe);
            a.mov(ecx, MsrEfer);
            a.rdmsr();
            a.and(eax, (int)EferNxe);
            EmitOut(a);
            KvmTestMachine.EmitDebugExit(a, 0);
        });

        // #GP: report, step over the 2-byte WRMSR, drop the error code, return.
        machine.Memory.Write(GeneralProtectionHandlerAddress, GuestCode.Assemble(64, GeneralProtectionHandlerAddress, a =>
        {
            a.mov(eax, GeneralProtectionMarker);
            EmitOut(a);
            a.add(__qword_ptr[rsp + 8], 2);
            a.add(rsp, 8);
            a.iretq();
        }));
        WriteInterruptGate(machine, 13, GeneralProtectionHandlerAddress);
        VcpuState state = machine.Vcpus[0].GetState();
        state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
        machine.Vcpus[0].SetState(state);

        var monitor = new LockingMonitor();
        if (protect)
        {
            monitor.Map = new ProtectionMap(monitor, enforce);
            machine.Vm.Protection = monitor.Map;
        }

        machine.Vm.PortIo.Register(LockPort, 1, new RecordingPortDevice(
            (_, _) => monitor.Map is null || monitor.Map.IsLocked ? 1UL : 0UL), "lock");

        var runner = new VirtualMachineRunner(machine.Vm, machine.Vcpus);
        bool stopped = runner.Run(TimeSpan.FromSeconds(60));
        string seen = $"output [{string.Join(", ", machine.Output.Values.Select(v => $"0x{v:x}"))}], locked {monitor.Map?.IsLocked}, "
            + $"violations {monitor.Violations.Count}, exits {string.Join(", ", machine.Vcpus[0].Exits.Snapshot().Select(p => $"{p.Key} {p.Value}"))}";
        Assert.True(stopped, "the guest did not stop in time: " + seen);
        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format() + "; " + seen);
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
        if (protect && enforce && machine.Vm.EnforcesMsrPins)
        {
            Assert.True(machine.Vcpus[0].Exits["wrmsr"] >= 3, "pinned MSR writes exit to SharpVisor");
        }

        return (machine.Output.Values, monitor);
    }

    private static void WriteMsr(Assembler a, uint msr, uint value)
    {
        a.mov(ecx, msr);
        a.mov(eax, value);
        a.xor(edx, edx);
        a.wrmsr();
    }

    /// <summary>Read-modify-write of the MSR's low half.</summary>
    private static void ChangeMsr(Assembler a, uint msr, uint orLow = 0, uint andLow = uint.MaxValue)
    {
        a.mov(ecx, msr);
        a.rdmsr();
        a.or(eax, (int)orLow);
        a.and(eax, unchecked((int)andLow));
        a.wrmsr();
    }

    private static void EmitOut(Assembler a)
    {
        a.mov(dx, KvmTestMachine.OutputPort);
        a.@out(dx, eax);
    }

    /// <summary>A 64-bit interrupt gate: present, DPL 0, type 0xE, in the long-mode code segment.</summary>
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

    /// <summary>Locks the protected page and the current LSTAR/EFER.NXE once the guest has asked (its port write).</summary>
    private sealed class LockingMonitor : IProtectionMonitor
    {
        public ProtectionMap? Map { get; set; }

        public ConcurrentQueue<ProtectionViolation> Violations { get; } = new();

        public ulong LockedLstar { get; private set; }

        public bool ProtectedPageWasWritable { get; private set; }

        public void OnUserModeEntered(IProtectionLockContext context)
        {
            // Before the guest's lock request LSTAR is not 0x1111 yet: wait for it.
            if (Map is null || context.Lstar != PinnedLstar)
            {
                return;
            }

            LockedLstar = context.Lstar;
            ProtectedPageWasWritable = context.TryTranslate(ProtectedPage, out ulong physical, out bool writable) && physical == ProtectedPage && writable;
            Map.Lock(
                [new ProtectedRange(ProtectedPage, ProtectedPage + 0x1000)],
                [],
                new RegisterPins { Lstar = context.Lstar, EferBits = context.Efer & EferNxe });
        }

        public void OnViolation(in ProtectionViolation violation) => Violations.Enqueue(violation);
    }
}
