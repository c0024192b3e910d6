using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The per-domain VMM's REST API: Firecracker's requests with Firecracker's JSON and status
/// codes (204 for a PUT/PATCH that worked, 400 with a fault_message for bad input), plus a
/// few SharpVisor extensions under /sharpvisor/ that the daemon uses.
/// </summary>
public static class VmmApi
{
    public static void Map(IEndpointRouteBuilder routes, VmmController vmm)
    {
        FirecrackerJsonContext json = FirecrackerJsonContext.Default;

        routes.MapGet("/", () => ApiResults.Guard(() => Results.Json(vmm.Describe(), json.InstanceInfo)));
        routes.MapGet("/version", () => ApiResults.Guard(() =>
            Results.Json(new FirecrackerVersion { Version = VmmVersion.FirecrackerApi }, json.FirecrackerVersion)));
        routes.MapGet("/machine-config", () => ApiResults.Guard(() => Results.Json(vmm.GetMachineConfig(), json.MachineConfiguration)));
        routes.MapGet("/vm/config", () => ApiResults.Guard(() => Results.Json(vmm.GetFullConfig(), json.FullVmConfiguration)));
        routes.MapGet("/balloon", () => ApiResults.Guard(() => Results.Json(vmm.GetBalloon(), json.Balloon)));

        routes.MapPut("/boot-source", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            BootSource body = await JsonBody.ReadAsync(request, json.BootSource);
            vmm.ConfigurePreBoot(c => c.SetBootSource(body));
            return ApiResults.NoContent();
        }));

        routes.MapPut("/machine-config", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            MachineConfiguration body = await JsonBody.ReadAsync(request, json.MachineConfiguration);
            vmm.ConfigurePreBoot(c => c.SetMachineConfig(body));
            return ApiResults.NoContent();
        }));

        routes.MapPatch("/machine-config", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            MachineConfigurationPatch body = await JsonBody.ReadAsync(request, json.MachineConfigurationPatch);
            vmm.ConfigurePreBoot(c => c.PatchMachineConfig(body));
            return ApiResults.NoContent();
        }));

        routes.MapPut("/drives/{drive_id}", (HttpRequest request, string drive_id) => ApiResults.GuardAsync(async () =>
        {
            Drive body = await JsonBody.ReadAsync(request, json.Drive);
            vmm.ConfigurePreBoot(c => c.PutDrive(drive_id, body));
            return ApiResults.NoContent();
        }));

        routes.MapPatch("/drives/{drive_id}", (HttpRequest request, string drive_id) => ApiResults.GuardAsync(async () =>
        {
            PartialDrive body = await JsonBody.ReadAsync(request, json.PartialDrive);
            vmm.PatchDrive(drive_id, body);
            return ApiResults.NoContent();
        }));

        routes.MapPatch("/network-interfaces/{iface_id}", (HttpRequest request, string iface_id) => ApiResults.GuardAsync(async () =>
        {
            PartialNetworkInterface body = await JsonBody.ReadAsync(request, json.PartialNetworkInterface);
            vmm.PatchNetworkInterface(iface_id, body);
            return ApiResults.NoContent();
        }));

        routes.MapPut("/network-interfaces/{iface_id}", (HttpRequest request, string iface_id) => ApiResults.GuardAsync(async () =>
        {
            NetworkInterface body = await JsonBody.ReadAsync(request, json.NetworkInterface);
            vmm.ConfigurePreBoot(c => c.PutNetworkInterface(iface_id, body));
            return ApiResults.NoContent();
        }));

        routes.MapPut("/balloon", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            Balloon body = await JsonBody.ReadAsync(request, json.Balloon);
            vmm.ConfigurePreBoot(c => c.SetBalloon(body));
            return ApiResults.NoContent();
        }));

        routes.MapPatch("/balloon", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            BalloonUpdate body = await JsonBody.ReadAsync(request, json.BalloonUpdate);
            vmm.SetBalloonTarget(body.AmountMib);
            return ApiResults.NoContent();
        }));

        routes.MapGet("/balloon/statistics", () => ApiResults.Guard(() => Results.Json(vmm.GetBalloonStatistics(), json.BalloonStats)));

        routes.MapPatch("/balloon/statistics", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            BalloonStatsUpdate body = await JsonBody.ReadAsync(request, json.BalloonStatsUpdate);
            vmm.SetBalloonStatisticsInterval(body.StatsPollingIntervalS);
            return ApiResults.NoContent();
        }));

        routes.MapPut("/actions", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            InstanceActionInfo body = await JsonBody.ReadAsync(request, json.InstanceActionInfo);
            switch (body.ActionType)
            {
                case InstanceActionInfo.InstanceStart:
                    vmm.Start();
                    break;
                case InstanceActionInfo.SendCtrlAltDel:
                    vmm.SendCtrlAltDel();
                    break;
                case InstanceActionInfo.FlushMetrics:
                    vmm.FlushMetrics();
                    break;
                default:
                    throw ApiException.BadRequest($"action_type '{body.ActionType}' is not one of InstanceStart, SendCtrlAltDel, FlushMetrics");
            }

            return ApiResults.NoContent();
        }));

        routes.MapPut("/logger", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            LoggerConfiguration body = await JsonBody.ReadAsync(request, json.LoggerConfiguration);
            vmm.ConfigurePreBoot(_ => vmm.Log.Configure(body));
            return ApiResults.NoContent();
        }));

        routes.MapPut("/metrics", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            MetricsConfiguration body = await JsonBody.ReadAsync(request, json.MetricsConfiguration);
            vmm.ConfigurePreBoot(_ => vmm.Metrics.Configure(body));
            return ApiResults.NoContent();
        }));

        routes.MapPut("/entropy", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            EntropyDevice body = await JsonBody.ReadAsync(request, json.EntropyDevice);
            vmm.ConfigurePreBoot(c => c.SetEntropy(body));
            return ApiResults.NoContent();
        }));

        SnapshotRoutes.Map(routes, vmm);

        routes.MapPut("/vsock", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            Vsock body = await JsonBody.ReadAsync(request, json.Vsock);
            vmm.ConfigurePreBoot(c => c.SetVsock(body));
            return ApiResults.NoContent();
        }));

        routes.MapPut("/serial", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            SerialDevice body = await JsonBody.ReadAsync(request, json.SerialDevice);
            vmm.ConfigureSerial(body);
            return ApiResults.NoContent();
        }));

        MapUnsupported(routes);

        routes.MapPatch("/vm", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            VmState body = await JsonBody.ReadAsync(request, json.VmState);
            switch (body.State)
            {
                case VmState.Paused:
                    vmm.Pause();
                    break;
                case VmState.Resumed:
                    vmm.Resume();
                    break;
                default:
                    throw ApiException.BadRequest($"state '{body.State}' is not one of Paused, Resumed");
            }

            return ApiResults.NoContent();
        }));

        // Like Firecracker, a path that is not in its API is bad input.
        routes.MapFallback((HttpContext context) =>
            ApiResults.Fault(StatusCodes.Status400BadRequest, $"Invalid request method and/or path: {context.Request.Method} {context.Request.Path}."));

        // SharpVisor extensions, for the daemon.
        ControlJsonContext control = ControlJsonContext.Default;
        routes.MapGet("/sharpvisor/status", () => ApiResults.Guard(() => Results.Json(vmm.Status(), control.VmmStatus)));
        routes.MapGet("/sharpvisor/counters", () => ApiResults.Guard(() => Results.Json(vmm.ReadCounters(), control.DomainCounters)));
        XenStoreRoutes.Map(routes, vmm);
        ProtectionRoutes.Map(routes, vmm);
        Migration.MigrationRoutes.Map(routes, vmm);
        routes.MapPut("/sharpvisor/power", (HttpRequest request) => ApiResults.GuardAsync(async () =>
        {
            PowerRequest body = await JsonBody.ReadAsync(request, control.PowerRequest);
            switch (body.Action)
            {
                case PowerRequest.PowerButton:
                    vmm.PressPowerButton();
                    break;
                case PowerRequest.PowerOff:
                    vmm.PowerOff(body.Reason ?? "powered off by the control plane");
                    break;
                default:
                    throw ApiException.BadRequest($"action '{body.Action}' is not one of PowerButton, PowerOff");
            }

            return ApiResults.NoContent();
        }));
    }

    /// <summary>
    /// The spec's routes SharpVisor does not implement yet, each refused with its reason
    /// (docs/firecracker.md lists them), never with the generic invalid-path answer.
    /// </summary>
    public static readonly IReadOnlyList<(string Method, string Path, string Reason)> Unsupported =
    [
        ("PATCH", "/balloon/hinting/start", "free page hinting is not supported by SharpVisor yet (its virtio-balloon does not offer the hinting feature)"),
        ("GET", "/balloon/hinting/status", "free page hinting is not supported by SharpVisor yet (its virtio-balloon does not offer the hinting feature)"),
        ("PATCH", "/balloon/hinting/stop", "free page hinting is not supported by SharpVisor yet (its virtio-balloon does not offer the hinting feature)"),
        ("PUT", "/cpu-config", "cpu-config (custom CPU templates) is not supported by SharpVisor yet: the guest sees the CPUID the accelerator offers"),
        ("PUT", "/pmem/{id}", "pmem is not supported by SharpVisor yet (it has no virtio-pmem device)"),
        ("PATCH", "/pmem/{id}", "pmem is not supported by SharpVisor yet (it has no virtio-pmem device)"),
        ("PUT", "/mmds", "MMDS is not supported by SharpVisor yet (no metadata service behind the NIC)"),
        ("PATCH", "/mmds", "MMDS is not supported by SharpVisor yet (no metadata service behind the NIC)"),
        ("GET", "/mmds", "MMDS is not supported by SharpVisor yet (no metadata service behind the NIC)"),
        ("PUT", "/mmds/config", "MMDS is not supported by SharpVisor yet (no metadata service behind the NIC)"),
        ("PUT", "/hotplug/memory", "memory hotplug is not supported by SharpVisor yet (it has no virtio-mem device)"),
        ("PATCH", "/hotplug/memory", "memory hotplug is not supported by SharpVisor yet (it has no virtio-mem device)"),
        ("GET", "/hotplug/memory", "memory hotplug is not supported by SharpVisor yet (it has no virtio-mem device)"),
    ];

    private static void MapUnsupported(IEndpointRouteBuilder routes)
    {
        foreach ((string method, string path, string reason) in Unsupported)
        {
            routes.MapMethods(path, [method], () => ApiResults.Fault(StatusCodes.Status400BadRequest, reason));
        }
    }

    /// <summary>Firecracker's metric name for a request path (put_api_requests.machine_cfg_count...).</summary>
    public static string MetricName(string path)
    {
        string first = path.Split('/', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
        return first switch
        {
            "" => "instance_info",
            "version" => "vmm_version",
            "boot-source" => "boot_source",
            "drives" => "drive",
            "network-interfaces" => "network",
            "machine-config" => "machine_cfg",
            "cpu-config" => "cpu_cfg",
            "vm" when path.StartsWith("/vm/config", StringComparison.Ordinal) => "vm_config",
            "hotplug" => "hotplug_memory",
            "snapshot" => path.EndsWith("/load", StringComparison.Ordinal) ? "load_snapshot" : "create_snapshot",
            _ => first.Replace('-', '_'),
        };
    }
}
