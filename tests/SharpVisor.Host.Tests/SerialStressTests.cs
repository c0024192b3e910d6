using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Issue 10's output stall, hunted from inside the VMM: the default guest boots on the emulator
/// to its self-check and powers off while another thread pauses it every few milliseconds to
/// sample the vCPUs' RIPs (what the progress reporter does) and a third types into its UART, so
/// the 16550's receive and transmit interrupts and the runner's pause/resume all race the boot
/// output. The output must not stall.
/// </summary>
public sealed class SerialStressTests
{
    [DefaultGuestFact]
    public void DefaultGuestBootsWhilePausedAndTypedAtConstantly()
    {
        var serial = new CapturedOutput();
        using VirtualMachineMonitor vmm = VirtualMachineMonitor.Create(new MachineConfiguration
        {
            KernelPath = GuestBootCapability.Kernel,
            InitrdPath = GuestBootCapability.Initrd,
            CommandLine = "console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff",
            MemorySize = 512UL << 20,
            Accelerator = AcceleratorKind.Emulator,
            SerialOutput = serial,
        });
        using var done = new CancellationTokenSource();
        long samples = 0;
        var sampler = new Thread(() =>
        {
            while (!done.IsCancellationRequested)
            {
                if (vmm.SampleInstructionPointers() is not null)
                {
                    Interlocked.Increment(ref samples);
                }

                Thread.Sleep(Random.Shared.Next(1, 30));
            }
        }) { IsBackground = true };
        var typist = new Thread(() =>
        {
            while (!done.IsCancellationRequested)
            {
                vmm.Serial.EnqueueInput("\r"u8);
                Thread.Sleep(Random.Shared.Next(1, 50));
            }
        }) { IsBackground = true };
        sampler.Start();
        typist.Start();

        RunOutcome outcome = vmm.Run(TimeSpan.FromSeconds(400));
        done.Cancel();

        string text = serial.Text;
        Assert.True(outcome.Reason == MachineStopReason.PowerOff,
            $"{outcome.Reason}: {outcome.Detail} after {samples} RIP samples; last output: {text[Math.Max(0, text.Length - 600)..]}");
        Assert.Contains("SELF-CHECK-END", text);
        Assert.True(Interlocked.Read(ref samples) > 10, $"only {samples} RIP samples");
    }
}
