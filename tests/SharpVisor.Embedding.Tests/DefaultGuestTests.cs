using System.Text;
using SharpVisor.TestSupport;

namespace SharpVisor.Embedding.Tests;

/// <summary>
/// The default guest (Debian's kernel, the busybox initramfs) booted through the embedding API
/// alone, on the emulator: one boot shows the disk option reaching the guest, the console
/// stream carrying input to the guest's shell and its answer back, and the guest's own
/// power-off ending the run.
/// </summary>
public sealed class DefaultGuestTests : IDisposable
{
    private readonly string _disk = Path.Combine(Path.GetTempPath(), $"sv-embed-{Guid.NewGuid():N}.img");

    public void Dispose() => File.Delete(_disk);

    [DefaultGuestFact]
    public async Task TheGuestBootsItsShellAnswersThroughTheConsoleStreamAndItPowersOff()
    {
        using (FileStream image = File.Create(_disk))
        {
            image.SetLength(1 << 20);
        }

        using var vm = VirtualMachine.Create(new VirtualMachineOptions
        {
            KernelPath = GuestBootCapability.Kernel,
            InitrdPath = GuestBootCapability.Initrd,
            CommandLine = "console=ttyS0 reboot=k panic=-1 no_timer_check",
            MemoryMib = 256,
            Accelerator = Accelerator.Emulator,
            Disks = [new DiskOptions(_disk)],
        });
        var console = new ConsoleCapture(vm.Console);
        vm.Start();
        await console.WaitForAsync(() => console.Text.Contains("SELF-CHECK-END", StringComparison.Ordinal), timeoutSeconds: 300);
        Assert.Contains("SELF-CHECK block vda sectors=2048", console.Text);

        // The shell may not have opened the console yet: say it again until it answers.
        for (int attempt = 0; !console.Text.Contains("embedded-42", StringComparison.Ordinal); attempt++)
        {
            Assert.True(attempt < 40, $"the shell never answered; the console shows:\n{console.Text}");
            vm.Console.Write(Encoding.ASCII.GetBytes("echo embedded-$((6*7))\n"));
            await Task.Delay(3000);
        }

        vm.Console.Write("poweroff -f\n"u8);
        VirtualMachineExit exit = await vm.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal((ExitReason.PowerOff, 0), (exit.Reason, exit.ExitStatus));
        Assert.Throws<IOException>(() => vm.Console.Write("too late\n"u8));
    }
}
