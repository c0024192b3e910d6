using System.CommandLine;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor create [--name NAME] CONFIG</c>: start a domain from a Firecracker-style JSON configuration.</summary>
public static class CreateCommand
{
    public static Command Create()
    {
        var config = new Argument<string>("CONFIG") { Description = "Firecracker JSON configuration (boot-source, machine-config, ...)" };
        var name = new Option<string?>("--name") { Description = "Domain name (default: the config file's name without extension)" };
        var accel = new Option<string>("--accel") { Description = "Accelerator: kvm, emulator or auto", DefaultValueFactory = _ => "auto" };
        accel.AcceptOnlyFromAmong(DomainRegistry.Accelerators);
        var command = new Command("create", "Create and boot a domain from a Firecracker-style JSON configuration.") { config, name, accel };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string path = result.GetValue(config)!;
            var request = new CreateDomainRequest
            {
                Name = result.GetValue(name) ?? Path.GetFileNameWithoutExtension(path),
                Accelerator = result.GetValue(accel),
                Config = ReadConfig(path),
            };
            DomainInfo domain = await client.CreateAsync(request, cancel);
            Console.WriteLine($"created domain {domain.Name} (id {domain.Id}): {domain.Vcpus} vCPU(s), {domain.MemoryMib} MiB, {domain.Accelerator}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    private static FullVmConfiguration ReadConfig(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new CliException($"config file '{path}' does not exist");
        }

        if (info.Length > VmmServer.MaxConfigFileBytes)
        {
            throw new CliException($"config file '{path}' is larger than {VmmServer.MaxConfigFileBytes} bytes");
        }

        try
        {
            return JsonBody.Parse(File.ReadAllBytes(path), FirecrackerJsonContext.Default.FullVmConfiguration);
        }
        catch (ApiException e)
        {
            throw new CliException($"{path}: {e.Message}");
        }
    }
}
