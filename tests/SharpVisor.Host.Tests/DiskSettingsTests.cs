using System.Net;
using SharpVisor.Cli;
using SharpVisor.Devices.Virtio;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Tests.Fakes;
using SharpVisor.Host.Vmm;
using SharpVisor.Host.Xl;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Every front end fills the one machine-configuration model (<see cref="MachineConfiguration"/>):
/// a disk's settings that front end can express arrive in the <see cref="DiskConfiguration"/> the
/// VMM builds from, none dropped on the way. (The embedding API's twin is in Embedding.Tests.)
/// </summary>
public sealed class DiskSettingsTests
{
    [Fact]
    public async Task FirecrackersDriveKeepsPathReadOnlyIdCacheTypeAndRateLimiter()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string root = vmm.Directory.CreateFile("rootfs.ext4");
        string data = vmm.Directory.CreateFile("data.img");
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{root}}", "is_root_device": true, "is_read_only": false}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/drives/data", $$"""
            {"drive_id": "data", "path_on_host": "{{data}}", "is_root_device": false, "is_read_only": true, "cache_type": "Unsafe",
             "rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 4096, "refill_time": 100 }, "ops": { "size": 50, "refill_time": 1000 } } }
            """)).Status);

        await vmm.StartMachineAsync();

        MachineConfiguration machine = Assert.IsType<FakeDomainMachine>(vmm.Factory.Last).Spec;
        Assert.Equal(2, machine.Disks.Count);
        Assert.Equal(new DiskConfiguration(root, false, "rootfs", DiskCacheMode.Writeback), machine.Disks[0]);
        DiskConfiguration disk = machine.Disks[1];
        Assert.Equal((data, true, "data", DiskCacheMode.Unsafe), (disk.Path, disk.ReadOnly, disk.Id, disk.CacheMode));
        Assert.Equal(new RateLimitConfiguration(new TokenBucketConfiguration(1048576, 4096, 100), new TokenBucketConfiguration(50, 0, 1000)), disk.RateLimit);
    }

    [Fact]
    public void XlCfgsDiskKeepsPathReadOnlyAndVdev()
    {
        using var directory = new TempDirectory();
        string web = directory.CreateFile("web.img");
        string logs = directory.CreateFile("logs.img");
        string kernel = directory.CreateFile("vmlinuz");
        XlDomainConfig xl = XlDomainConfig.From(XlConfigFile.Parse($"kernel = '{kernel}'\ndisk = [ 'file:{web},xvda,w', 'target={logs},vdev=xvdb,access=ro' ]\n"), "/");

        // The daemon sends this Firecracker configuration to the domain's VMM, which builds from it.
        CreateDomainRequest request = xl.ToCreateRequest(null, "emulator");
        MachineConfiguration machine = VmConfiguration.FromFull(request.Config).ToMachineConfiguration("web", "emulator");

        Assert.Equal(
            [new DiskConfiguration(web, false, "xvda"), new DiskConfiguration(logs, true, "xvdb")],
            machine.Disks);
    }

    [Fact]
    public void TheCommandLinesDiskKeepsPathReadOnlyAndId()
    {
        Assert.Equal(new DiskConfiguration("/srv/data.img", true, "data0"), DeviceOptions.ParseDisk("/srv/data.img,ro,id=data0"));
        Assert.Equal(new DiskConfiguration("/srv/root.img"), DeviceOptions.ParseDisk("/srv/root.img"));
    }

    [Fact]
    public void ASnapshotKeepsPathReadOnlyIdAndCacheType()
    {
        var configuration = new MachineConfiguration
        {
            KernelPath = "/k",
            Disks = [new DiskConfiguration("/srv/a.img", true, "a", DiskCacheMode.Unsafe), new DiskConfiguration("/srv/b.img", false, "b")],
        };

        byte[] saved = SnapshotConfiguration.Save(configuration, AcceleratorKind.Emulator, MmuKind.Nested, CpuVendorKind.Amd);
        var reader = new SharpVisor.Machine.Snapshots.SnapshotReader(SnapshotConfiguration.Tag, saved);
        MachineConfiguration loaded = SnapshotConfiguration.Load(reader, out _);

        Assert.Equal(configuration.Disks, loaded.Disks);
        Assert.Equal((AcceleratorKind.Emulator, MmuKind.Nested, CpuVendorKind.Amd), (loaded.Accelerator, loaded.Mmu, loaded.CpuVendor));
    }
}
