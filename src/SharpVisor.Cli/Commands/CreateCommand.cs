using System.CommandLine;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Xl;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor create [--name NAME] CONFIG</c>: start a domain from a Firecracker-style JSON
/// configuration or from Xen's xl.cfg syntax (docs/control-plane.md).
/// </summary>
public static class CreateCommand
{
    public static Command Create()
    {
        var config = new Argument<string>("CONFIG") { Description = "Firecracker JSON configuration (boot-source, machine-config, ...) or an xl.cfg file (type = \"pvh\", kernel, memory, disk, ...)" };
        var name = new Option<string?>("--name") { Description = "Domain name (default: the config file's name without extension)" };
        var accel = new Option<string>("--accel") { Description = "Accelerator: kvm, emulator or auto", DefaultValueFactory = _ => "auto" };
        accel.AcceptOnlyFromAmong(DomainRegistry.Accelerators);
        var command = new Command("create", "Create and boot a domain from a Firecracker-style JSON configuration or an xl.cfg file.") { config, name, accel };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string path = result.GetValue(config)!;
            CreateDomainRequest request = ReadRequest(path, result.GetValue(name), result.GetValue(accel)!);
            DomainInfo domain = await client.CreateAsync(request, cancel);
            string type = domain.Type == DomainTypes.Pc ? "" : $", {domain.Type}";
            Console.WriteLine($"created domain {domain.Name} (id {domain.Id}): {domain.Vcpus} vCPU(s), {domain.MemoryMib} MiB, {domain.Accelerator}{type}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    private static CreateDomainRequest ReadRequest(string path, string? name, string accelerator)
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

        byte[] bytes = File.ReadAllBytes(path);
        string fallbackName = Path.GetFileNameWithoutExtension(path);
        string text = System.Text.Encoding.UTF8.GetString(bytes);
        if (XlConfigFile.LooksLikeXl(text))
        {
            try
            {
                // Relative paths in an xl.cfg are the user's: resolve them here, where the user is.
                XlDomainConfig xl = XlDomainConfig.From(XlConfigFile.Parse(text), Environment.CurrentDirectory);
                return xl.ToCreateRequest(name ?? xl.Name ?? fallbackName, accelerator);
            }
            catch (XlConfigException e)
            {
                throw new CliException($"{path}: {e.Message}");
            }
        }

        try
        {
            return new CreateDomainRequest
            {
                Name = name ?? fallbackName,
                Accelerator = accelerator,
                Config = JsonBody.Parse(bytes, FirecrackerJsonContext.Default.FullVmConfiguration),
            };
        }
        catch (ApiException e)
        {
            throw new CliException($"{path}: {e.Message}");
        }
    }
}
