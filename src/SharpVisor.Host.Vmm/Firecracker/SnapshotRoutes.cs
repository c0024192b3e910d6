using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Firecracker's snapshot routes (docs/snapshot.md). PUT /snapshot/create works on a paused
/// emulated microVM; PUT /snapshot/load builds the microVM from a snapshot instead of InstanceStart.
/// </summary>
public static class SnapshotRoutes
{
    public static void Map(ApiRouter routes, VmmController vmm)
    {
        FirecrackerJsonContext json = FirecrackerJsonContext.Default;
        routes.MapPut("/snapshot/create", request =>
        {
            SnapshotCreateParameters body = request.ReadJson(json.SnapshotCreateParameters);
            bool diff = (body.SnapshotType ?? SnapshotCreateParameters.Full) switch
            {
                SnapshotCreateParameters.Full => false,
                SnapshotCreateParameters.Diff => true,
                string other => throw ApiException.BadRequest($"snapshot_type '{other}' is not one of Full, Diff"),
            };
            vmm.CreateSnapshot(body.SnapshotPath, body.MemFilePath, diff);
            return ApiResponse.NoContent();
        });

        routes.MapPut("/snapshot/load", request =>
        {
            SnapshotLoadParameters body = request.ReadJson(json.SnapshotLoadParameters);
            vmm.LoadSnapshot(body.SnapshotPath, MemoryFile(body), body.ResumeVm ?? false);
            return ApiResponse.NoContent();
        });
    }

    /// <summary>The memory file of a load request; what SharpVisor cannot do is refused, never ignored.</summary>
    private static string MemoryFile(SnapshotLoadParameters body)
    {
        if ((body.MemFilePath is null) == (body.MemBackend is null))
        {
            throw ApiException.BadRequest("exactly one of mem_file_path and mem_backend must be given");
        }

        if (body.MemBackend is { BackendType: not "File" } backend)
        {
            throw ApiException.BadRequest(backend.BackendType == "Uffd"
                ? "mem_backend Uffd (userfaultfd) is not supported by SharpVisor yet: use File"
                : $"backend_type '{backend.BackendType}' is not one of File, Uffd");
        }

        if (body.NetworkOverrides is { Count: > 0 })
        {
            throw ApiException.BadRequest("network_overrides are not supported by SharpVisor yet: the restored NICs attach to the TAPs they had");
        }

        if (body.VsockOverride is not null)
        {
            throw ApiException.BadRequest("vsock_override is not supported by SharpVisor yet (it has no virtio-vsock device)");
        }

        if (body.ClockRealtime == true)
        {
            throw ApiException.BadRequest("clock_realtime is not supported by SharpVisor yet: the guest's clock resumes from the snapshot's instant");
        }

        if (body.HugePages is not (null or "None"))
        {
            throw ApiException.BadRequest($"huge_pages '{body.HugePages}' is not supported by SharpVisor yet: guest memory uses 4 KiB pages");
        }

        // track_dirty_pages / enable_diff_snapshots need nothing: diff snapshots compare page contents (docs/snapshot.md).
        return body.MemFilePath ?? body.MemBackend!.BackendPath;
    }
}
