// EmbeddedVm: boots a Linux kernel inside this process with SharpVisor's embedding API, joins
// the guest's serial console to this terminal, and exits with the guest's status.
//
//   dotnet run --project samples/EmbeddedVm -- KERNEL [INITRD] [--emulator]
using SharpVisor;

string[] files = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
if (files.Length is < 1 or > 2)
{
    Console.Error.WriteLine("usage: EmbeddedVm KERNEL [INITRD] [--emulator]");
    return 2;
}

VirtualMachine vm;
try
{
    vm = VirtualMachine.Create(new VirtualMachineOptions
    {
        KernelPath = files[0],
        InitrdPath = files.Length > 1 ? files[1] : null,
        CommandLine = "console=ttyS0 reboot=k panic=-1",
        MemoryMib = 512,
        Accelerator = args.Contains("--emulator") ? Accelerator.Emulator : Accelerator.Auto,
        Log = line => Console.Error.WriteLine($"[vm] {line}"),
    });
}
catch (VirtualMachineException e)
{
    Console.Error.WriteLine($"EmbeddedVm: {e.Message}");
    return 1;
}

using (vm)
{
    Console.Error.WriteLine($"[vm] {vm.AcceleratorDescription}");
    vm.Start();

    // Guest output to stdout, stdin to the guest (line by line: the terminal stays cooked).
    Task output = vm.Console.CopyToAsync(Console.OpenStandardOutput());
    var input = new Thread(() =>
    {
        using Stream stdin = Console.OpenStandardInput();
        byte[] buffer = new byte[256];
        int read;
        while ((read = stdin.Read(buffer)) > 0)
        {
            try
            {
                vm.Console.Write(buffer, 0, read);
            }
            catch (IOException)
            {
                return; // the guest has stopped
            }
        }
    }) { IsBackground = true };
    input.Start();

    VirtualMachineExit exit = await vm.WaitForExitAsync();
    await output;
    Console.Error.WriteLine($"[vm] {exit.Reason}: {exit.Detail}");
    return exit.Reason == ExitReason.Crashed ? 1 : exit.ExitStatus;
}
