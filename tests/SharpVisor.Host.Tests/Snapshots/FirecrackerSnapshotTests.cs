using System.Net;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// Firecracker's snapshot routes on a real (emulated) machine, the tiny counting guest of
/// <see cref="EmulatorSnapshotTests"/>: PATCH /vm Paused, PUT /snapshot/create, then a second
/// VMM's PUT /snapshot/load with resume_vm finishes the computation with the right value.
/// </summary>
public sealed class FirecrackerSnapshotTests
{
    [Fact]
    public async Task ASnapshotCreatedThroughTheApiIsLoadedByAnotherVmm()
    {
        using var files = new TempDirectory();
        string kernel = files.File("lcg.bin");
        File.WriteAllBytes(kernel, EmulatorSnapshotTests.BuildKernel());
        string state = files.File("vm.state");
        string memory = files.File("vm.mem");
        string diffState = files.File("vm-diff.state");
        string diffMemory = files.File("vm-diff.mem");

        await using (VmmTestServer source = await StartAsync())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await source.PutAsync("/boot-source", $$"""{"kernel_image_path": "{{kernel}}"}""")).Status);
            Assert.Equal(HttpStatusCode.NoContent, (await source.PutAsync("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 16}""")).Status);
            VmmTestServer.Response early = await source.PutAsync("/snapshot/create", $$"""{"snapshot_path": "{{state}}", "mem_file_path": "{{memory}}"}""");
            Assert.Equal(HttpStatusCode.BadRequest, early.Status);
            Assert.Equal(HttpStatusCode.NoContent, (await source.PutAsync("/actions", """{"action_type": "InstanceStart"}""")).Status);

            VmmTestServer.Response running = await source.PutAsync("/snapshot/create", $$"""{"snapshot_path": "{{state}}", "mem_file_path": "{{memory}}"}""");
            Assert.Equal(HttpStatusCode.BadRequest, running.Status);
            Assert.Contains("pause it (PATCH /vm Paused)", running.FaultMessage);

            await Task.Delay(300);
            Assert.Equal(HttpStatusCode.NoContent, (await source.PatchAsync("/vm", """{"state": "Paused"}""")).Status);
            Assert.Equal(HttpStatusCode.BadRequest, (await source.PutAsync("/snapshot/create", $$"""{"snapshot_path": "{{state}}", "mem_file_path": "{{memory}}", "snapshot_type": "Weekly"}""")).Status);
            Assert.Equal(HttpStatusCode.NoContent, (await source.PutAsync("/snapshot/create", $$"""{"snapshot_path": "{{state}}", "mem_file_path": "{{memory}}", "snapshot_type": "Full"}""")).Status);

            // A diff a moment later, on top of the full one.
            Assert.Equal(HttpStatusCode.NoContent, (await source.PatchAsync("/vm", """{"state": "Resumed"}""")).Status);
            await Task.Delay(100);
            Assert.Equal(HttpStatusCode.NoContent, (await source.PatchAsync("/vm", """{"state": "Paused"}""")).Status);
            Assert.Equal(HttpStatusCode.NoContent, (await source.PutAsync("/snapshot/create", $$"""{"snapshot_path": "{{diffState}}", "mem_file_path": "{{diffMemory}}", "snapshot_type": "Diff"}""")).Status);
        }

        // Firecracker's way to load a diff: lay its memory over the full one's (rebase-snap), then
        // load the diff's state with that file. The diff's own memory file is refused.
        await using (VmmTestServer fromDiff = await StartAsync())
        {
            VmmTestServer.Response alone = await fromDiff.PutAsync("/snapshot/load", $$$"""{"snapshot_path": "{{{diffState}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{diffMemory}}}"}}""");
            Assert.Equal(HttpStatusCode.BadRequest, alone.Status);
            Assert.Contains("holds only the diff's pages", alone.FaultMessage);
        }

        string merged = files.File("merged.mem");
        File.Copy(memory, merged);
        Assert.True(SnapshotMemorySection.Rebase(merged, diffState, diffMemory) > 0);
        await using (VmmTestServer fromDiff = await StartAsync())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await fromDiff.PutAsync("/snapshot/load", $$$"""{"snapshot_path": "{{{diffState}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{merged}}}"}, "resume_vm": true}""")).Status);
            DomainStopInfo diffStopped = await fromDiff.Server.Controller.Stopped.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Equal((EmulatorSnapshotTests.Done << 1) | 1, diffStopped.ExitStatus);
        }

        Assert.True(File.Exists(state) && new FileInfo(memory).Length == 16L << 20);

        await using VmmTestServer target = await StartAsync();
        VmmTestServer.Response uffd = await target.PutAsync("/snapshot/load", $$$"""{"snapshot_path": "{{{state}}}", "mem_backend": {"backend_type": "Uffd", "backend_path": "/run/uffd.sock"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, uffd.Status);
        Assert.Contains("Uffd", uffd.FaultMessage);
        VmmTestServer.Response both = await target.PutAsync("/snapshot/load", $$$"""{"snapshot_path": "{{{state}}}", "mem_file_path": "{{{memory}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{memory}}}"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, both.Status);

        Assert.Equal(HttpStatusCode.NoContent, (await target.PutAsync("/snapshot/load", $$$"""{"snapshot_path": "{{{state}}}", "mem_backend": {"backend_type": "File", "backend_path": "{{{memory}}}"}, "resume_vm": false}""")).Status);
        Assert.Equal(VmmState.Paused, target.Server.Controller.State);
        Assert.Equal(HttpStatusCode.BadRequest, (await target.PutAsync("/actions", """{"action_type": "InstanceStart"}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await target.PatchAsync("/vm", """{"state": "Resumed"}""")).Status);

        DomainStopInfo stopped = await target.Server.Controller.Stopped.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal((EmulatorSnapshotTests.Done << 1) | 1, stopped.ExitStatus);
    }

    private static Task<VmmTestServer> StartAsync() =>
        VmmTestServer.StartAsync(
            configure: (_, options) => options with { Identity = new VmmIdentity("snap-vm", 7, "emulator") },
            machines: new MonitorDomainMachineFactory());
}
