using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The per-domain VMM's REST API: Firecracker's requests with Firecracker's JSON and status
/// codes (204 for a PUT/PATCH that worked, 400 with a fault_message for bad input), plus a
/// few SharpVisor extensions under /sharpvisor/ that the daemon uses.
/// </summary>
public static class VmmApi
{
    public static void Map(ApiRouter routes, VmmController vmm)
    {
        FirecrackerJsonContext json = FirecrackerJsonContext.Default;

        routes.MapGet("/", _ => ApiResponse.Json(vmm.Describe(), json.InstanceInfo));
        routes.MapGet("/version", _ => ApiResponse.Json(new FirecrackerVersion { Version = VmmVersion.FirecrackerApi }, json.FirecrackerVersion));
        routes.MapGet("/machine-config", _ => ApiResponse.Json(vmm.GetMachineConfig(), json.MachineConfig));
        routes.MapGet("/vm/config", _ => ApiResponse.Json(vmm.GetFullConfig(), json.FullVmConfiguration));
        routes.MapGet("/balloon", _ => ApiResponse.Json(vmm.GetBalloon(), json.Balloon));

        routes.MapPut("/boot-source", request =>
        {
            BootSource body = request.ReadJson(json.BootSource);
            vmm.ConfigurePreBoot(c => c.SetBootSource(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/machine-config", request =>
        {
            MachineConfig body = request.ReadJson(json.MachineConfig);
            vmm.ConfigurePreBoot(c => c.SetMachineConfig(body));
            return ApiResponse.NoContent();
        });

        routes.MapPatch("/machine-config", request =>
        {
            MachineConfigurationPatch body = request.ReadJson(json.MachineConfigurationPatch);
            vmm.ConfigurePreBoot(c => c.PatchMachineConfig(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/drives/{drive_id}", request =>
        {
            string driveId = request.Route("drive_id");
            Drive body = request.ReadJson(json.Drive);
            vmm.ConfigurePreBoot(c => c.PutDrive(driveId, body));
            return ApiResponse.NoContent();
        });

        routes.MapPatch("/drives/{drive_id}", request =>
        {
            string driveId = request.Route("drive_id");
            PartialDrive body = request.ReadJson(json.PartialDrive);
            vmm.PatchDrive(driveId, body);
            return ApiResponse.NoContent();
        });

        routes.MapPatch("/network-interfaces/{iface_id}", request =>
        {
            string ifaceId = request.Route("iface_id");
            PartialNetworkInterface body = request.ReadJson(json.PartialNetworkInterface);
            vmm.PatchNetworkInterface(ifaceId, body);
            return ApiResponse.NoContent();
        });

        routes.MapPut("/network-interfaces/{iface_id}", request =>
        {
            string ifaceId = request.Route("iface_id");
            NetworkInterface body = request.ReadJson(json.NetworkInterface);
            vmm.ConfigurePreBoot(c => c.PutNetworkInterface(ifaceId, body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/balloon", request =>
        {
            Balloon body = request.ReadJson(json.Balloon);
            vmm.ConfigurePreBoot(c => c.SetBalloon(body));
            return ApiResponse.NoContent();
        });

        routes.MapPatch("/balloon", request =>
        {
            BalloonUpdate body = request.ReadJson(json.BalloonUpdate);
            vmm.SetBalloonTarget(body.AmountMib);
            return ApiResponse.NoContent();
        });

        routes.MapGet("/balloon/statistics", _ => ApiResponse.Json(vmm.GetBalloonStatistics(), json.BalloonStats));

        routes.MapPatch("/balloon/statistics", request =>
        {
            BalloonStatsUpdate body = request.ReadJson(json.BalloonStatsUpdate);
            vmm.SetBalloonStatisticsInterval(body.StatsPollingIntervalS);
            return ApiResponse.NoContent();
        });

        routes.MapPut("/actions", request =>
        {
            InstanceActionInfo body = request.ReadJson(json.InstanceActionInfo);
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

            return ApiResponse.NoContent();
        });

        routes.MapPut("/logger", request =>
        {
            LoggerConfiguration body = request.ReadJson(json.LoggerConfiguration);
            vmm.ConfigurePreBoot(_ => vmm.Log.Configure(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/metrics", request =>
        {
            MetricsConfiguration body = request.ReadJson(json.MetricsConfiguration);
            vmm.ConfigurePreBoot(_ => vmm.Metrics.Configure(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/entropy", request =>
        {
            EntropyDevice body = request.ReadJson(json.EntropyDevice);
            vmm.ConfigurePreBoot(c => c.SetEntropy(body));
            return ApiResponse.NoContent();
        });

        SnapshotRoutes.Map(routes, vmm);

        routes.MapPut("/vsock", request =>
        {
            Vsock body = request.ReadJson(json.Vsock);
            vmm.ConfigurePreBoot(c => c.SetVsock(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/cpu-config", request =>
        {
            CpuConfiguration body = request.ReadJson(json.CpuConfiguration);
            vmm.ConfigurePreBoot(c => c.SetCpuConfiguration(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/mmds/config", request =>
        {
            Mmds.MmdsConfiguration body = request.ReadJson(json.MmdsConfiguration);
            vmm.ConfigurePreBoot(c => c.SetMmdsConfiguration(body));
            return ApiResponse.NoContent();
        });

        routes.MapPut("/mmds", request =>
        {
            vmm.MmdsData.Put(request.Body);
            return ApiResponse.NoContent();
        });

        routes.MapPatch("/mmds", request =>
        {
            vmm.MmdsData.Patch(request.Body);
            return ApiResponse.NoContent();
        });

        routes.MapGet("/mmds", _ => ApiResponse.RawJson(vmm.MmdsData.Read()));

        routes.MapPut("/serial", request =>
        {
            SerialDevice body = request.ReadJson(json.SerialDevice);
            vmm.ConfigureSerial(body);
            return ApiResponse.NoContent();
        });

        MapUnsupported(routes);

        routes.MapPatch("/vm", request =>
        {
            VmState body = request.ReadJson(json.VmState);
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

            return ApiResponse.NoContent();
        });

        // Like Firecracker, a path that is not in its API is bad input.
        routes.Fallback = request =>
            ApiResponse.Fault(400, $"Invalid request method and/or path: {request.Method} {request.Path}.");

        // SharpVisor extensions, for the daemon.
        ControlJsonContext control = ControlJsonContext.Default;
        routes.MapGet("/sharpvisor/status", _ => ApiResponse.Json(vmm.Status(), control.VmmStatus));
        routes.MapGet("/sharpvisor/counters", _ => ApiResponse.Json(vmm.ReadCounters(), control.DomainCounters));
        XenStoreRoutes.Map(routes, vmm);
        ProtectionRoutes.Map(routes, vmm);
        Migration.MigrationRoutes.Map(routes, vmm);
        routes.MapPut("/sharpvisor/power", request =>
        {
            PowerRequest body = request.ReadJson(control.PowerRequest);
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

            return ApiResponse.NoContent();
        });
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
        ("PUT", "/pmem/{id}", "pmem is not supported by SharpVisor yet (it has no virtio-pmem device)"),
        ("PATCH", "/pmem/{id}", "pmem is not supported by SharpVisor yet (it has no virtio-pmem device)"),
        ("PUT", "/hotplug/memory", "memory hotplug is not supported by SharpVisor yet (it has no virtio-mem device)"),
        ("PATCH", "/hotplug/memory", "memory hotplug is not supported by SharpVisor yet (it has no virtio-mem device)"),
        ("GET", "/hotplug/memory", "memory hotplug is not supported by SharpVisor yet (it has no virtio-mem device)"),
    ];

    private static void MapUnsupported(ApiRouter routes)
    {
        foreach ((string method, string path, string reason) in Unsupported)
        {
            routes.Map(method, path, _ => ApiResponse.Fault(400, reason));
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
