using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Migration;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// Xen domains are not saved, snapshotted or migrated yet (their Xen state is not in the format):
/// each of the three is refused by the daemon with one line naming what is missing, before the
/// domain is paused or touched, and the domain runs on. The VMM refuses the same way on its own.
/// </summary>
public sealed class XenSnapshotRefusalTests
{
    private const string Missing = "save, snapshot and migration of Xen pvh domains are not implemented: the snapshot format lacks their Xen state (event channels, grant table, XenStore, the shared-info and vCPU-info pages, the back-ends' ring state); the domain runs on";

    [DefaultGuestFact]
    public async Task SaveSnapshotAndMigrateOfAPvhDomainAreRefusedWithWhatIsMissing()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        await host.Client.CreateAsync(new CreateDomainRequest
        {
            Name = "xen",
            Accelerator = "emulator",
            Type = DomainTypes.Pvh,
            Config = new FullVmConfiguration
            {
                BootSource = new BootSource { KernelImagePath = GuestBootCapability.Kernel, InitrdPath = GuestBootCapability.Initrd, BootArgs = "console=hvc0 reboot=k panic=-1" },
                MachineConfig = new MachineConfig { VcpuCount = 1, MemSizeMib = 128 },
            },
        });
        string state = host.Directory.File("xen.state");

        DaemonException save = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SaveAsync("xen", state, keep: false));
        Assert.Equal($"domain 'xen': {Missing}", save.Message);
        DaemonException snapshot = await Assert.ThrowsAsync<DaemonException>(() => host.Client.SnapshotAsync("xen", state, diff: false));
        Assert.Equal($"domain 'xen': {Missing}", snapshot.Message);
        await Assert.ThrowsAsync<DaemonException>(() => host.Client.SnapshotAsync("xen", state, diff: true));

        using (HttpClient http = UnixSocketHttp.CreateClient(host.Client.SocketPath, Timeout.InfiniteTimeSpan))
        {
            string last = await MigrationLines.RelayAsync(http, HttpMethod.Post, "/domains/xen/migrate", new Dictionary<string, object> { ["destination"] = "127.0.0.1:9" }, _ => Task.CompletedTask, CancellationToken.None);
            Assert.Equal($"{MigrationLines.Error}domain 'xen': {Missing}", last);
        }

        Assert.False(File.Exists(state) || File.Exists(state + ".mem"));
        Assert.Equal("running", (await host.Client.GetAsync("xen")).State);
        await host.Client.DestroyAsync("xen");
    }
}
