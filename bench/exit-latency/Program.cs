using System.Diagnostics;
using SharpVisor.Bench.ExitLatency;
using SharpVisor.Kvm;
using SharpVisor.Machine;
using SharpVisor.Memory;

// Usage:
//   SharpVisor.Bench.ExitLatency --write-guest FILE          write the guest bytes (for kvm-exit.c too)
//   SharpVisor.Bench.ExitLatency --guest FILE --exits N      run N port-I/O exits through SharpVisor
// Prints "sharpvisor exits=N ns_per_exit=X cpu_ns_per_exit=Y": wall-clock time and the vCPU
// thread's CPU time (including the time the kernel spends running the guest), both per exit.
string? writeGuest = null;
string? guestPath = null;
int exits = 200_000;
const int warmupExits = 20_000;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--write-guest":
            writeGuest = args[++i];
            break;
        case "--guest":
            guestPath = args[++i];
            break;
        case "--exits":
            exits = int.Parse(args[++i]);
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

if (writeGuest is not null)
{
    File.WriteAllBytes(writeGuest, ExitLatencyGuest.Assemble());
    return 0;
}

byte[] guest = guestPath is not null ? File.ReadAllBytes(guestPath) : ExitLatencyGuest.Assemble();

using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
using var vm = (KvmVirtualMachine)new KvmAccelerator().CreateVirtualMachine(memory, 1);
using IVcpu vcpu = vm.CreateVcpu(0);
memory.Write(ExitLatencyGuest.LoadAddress, guest);
var counter = new CountingPort();
vm.PortIo.Register(ExitLatencyGuest.LoopPort, 1, counter, "bench-loop");
vm.PortIo.Register(ExitLatencyGuest.DonePort, 1, new KickingPort(vcpu), "bench-done");

RunGuest(warmupExits);
long counted = counter.Count;
var stopwatch = Stopwatch.StartNew();
long cpuStart = ThreadCpuClock.Nanoseconds();
RunGuest(exits);
long cpuEnd = ThreadCpuClock.Nanoseconds();
stopwatch.Stop();
if (counter.Count - counted != exits)
{
    Console.Error.WriteLine($"expected {exits} exits, counted {counter.Count - counted}");
    return 1;
}

double nsPerExit = stopwatch.Elapsed.TotalNanoseconds / exits;
double cpuNsPerExit = (double)(cpuEnd - cpuStart) / exits;
Console.WriteLine($"sharpvisor exits={exits} ns_per_exit={nsPerExit:F0} cpu_ns_per_exit={cpuNsPerExit:F0}");
return 0;

void RunGuest(int count)
{
    VcpuState state = vcpu.GetState();
    state.Cs = SegmentRegister.Flat(0x08, 0xB, longMode: false, defaultBig: true);
    SegmentRegister data = SegmentRegister.Flat(0x10, 0x3, longMode: false, defaultBig: true);
    state.Ds = state.Es = state.Fs = state.Gs = state.Ss = data;
    state.Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType;
    state.Rip = ExitLatencyGuest.LoadAddress;
    state.Rcx = (ulong)count;
    state.Rflags = 0x2;
    vcpu.SetState(state);
    VcpuExit exit = vcpu.Run();
    if (exit.Reason != VcpuExitReason.Stopped)
    {
        throw new InvalidOperationException(exit.Format());
    }
}
