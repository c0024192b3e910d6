using System.CommandLine;
using System.Globalization;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor vmm</c>: one domain's VMM process, serving the Firecracker REST API on
/// --api-sock (and its serial console on --console-sock). The daemon starts one per domain;
/// it also runs on its own, driven by any Firecracker client.
/// </summary>
public static class VmmCommand
{
    public static Command Create()
    {
        var apiSock = new Option<string>("--api-sock") { Description = "Unix socket for the Firecracker API", Required = true };
        var configFile = new Option<string?>("--config-file") { Description = "Firecracker JSON configuration: configure and start at once" };
        var id = new Option<int>("--id") { Description = "Domain id (given by the daemon)", DefaultValueFactory = _ => 0 };
        var name = new Option<string?>("--name") { Description = "Domain name: the instance id reported by GET /" };
        var consoleSock = new Option<string?>("--console-sock") { Description = "Unix socket for the serial console (default: API socket + .console)" };
        var stateFile = new Option<string?>("--state-file") { Description = "Keep a JSON state file here (the daemon reads it)" };
        var accel = new Option<string>("--accel") { Description = "Accelerator: kvm, emulator, or auto (KVM when hardware-backed, else the emulator)", DefaultValueFactory = _ => "auto" };
        accel.AcceptOnlyFromAmong("kvm", "emulator", "auto");
        var xen = new Option<string?>("--xen") { Description = "Build the machine as a Xen domain: pvh, hvm or pv (docs/xen.md, docs/xen-pv.md)" };
        xen.AcceptOnlyFromAmong("pvh", "hvm", "pv", "driver");
        var xenLink = new Option<string?>("--xen-link") { Description = "The daemon's domains directory: a Xen domain is domid --id there and reaches other domains' event channels and grants (docs/xen.md, Inter-domain)" };
        var logFile = new Option<string?>("--log-file") { Description = "Write the VMM's log here, capped and rotated (to FILE.1) at --log-limit bytes" };
        var logLimit = new Option<long>("--log-limit") { Description = "Size at which --log-file rotates, in bytes", DefaultValueFactory = _ => VmmLogFile.DefaultLimitBytes };
        var command = new Command("vmm", "Run one domain's VMM, serving the Firecracker REST API on a Unix socket.")
        {
            apiSock, configFile, id, name, consoleSock, stateFile, accel, xen, xenLink, logFile, logLimit,
        };
        command.SetAction((result, cancel) => RunAsync(
            result.GetValue(logFile),
            result.GetValue(logLimit),
            new VmmServerOptions
            {
                ApiSocketPath = result.GetValue(apiSock)!,
                ConfigFile = result.GetValue(configFile),
                ConsoleSocketPath = result.GetValue(consoleSock),
                StateFilePath = result.GetValue(stateFile),
                Identity = new VmmIdentity(
                    result.GetValue(name) ?? $"vmm-{result.GetValue(id).ToString(CultureInfo.InvariantCulture)}",
                    result.GetValue(id),
                    result.GetValue(accel)!)
                {
                    Xen = result.GetValue(xen) == "driver" ? XenMode.Driver : XenModes.Parse(result.GetValue(xen)),
                    XenLinkDirectory = result.GetValue(xenLink),
                },
            },
            cancel));
        return command;
    }

    private static async Task<int> RunAsync(string? logPath, long logLimit, VmmServerOptions options, CancellationToken cancel)
    {
        VmmLogFile? log = null;
        if (logPath is not null)
        {
            try
            {
                log = new VmmLogFile(logPath, logLimit);
            }
            catch (Exception e) when (e is IOException or ArgumentException)
            {
                return Toolstack.Fail(e.Message);
            }

            // Everything the VMM says (guest-triggered device lines included) goes through the capped file.
            Console.SetError(log);
            Console.SetOut(log);
        }

        using (log)
        {
            return await RunServerAsync(options, cancel);
        }
    }

    internal static Task<int> RunServerAsync(VmmServerOptions options, CancellationToken cancel) =>
        VmmServer.RunProcessAsync(options, new MonitorDomainMachineFactory(), cancel);
}
