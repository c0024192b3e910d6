using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Tests.Fakes;

namespace SharpVisor.Host.Tests;

/// <summary>A real sharpvisord (Kestrel on a Unix socket) in a temp runtime directory, with VMMs from a given launcher.</summary>
public sealed class DaemonTestHost : IAsyncDisposable
{
    private readonly List<string> _log = new();

    private DaemonTestHost(TempDirectory directory, IVmmLauncher launcher, string? cgroupName)
    {
        Directory = directory;
        Launcher = launcher;
        CgroupName = cgroupName;
        Runtime = new RuntimeDirectory(directory.File("run"));
        Client = new DaemonClient(Runtime.DaemonSocket, TimeSpan.FromSeconds(60));
    }

    public TempDirectory Directory { get; }

    public IVmmLauncher Launcher { get; }

    public string? CgroupName { get; }

    public RuntimeDirectory Runtime { get; }

    public DaemonServer? Server { get; private set; }

    /// <summary>The daemon's --migrate-listen, if any.</summary>
    public string? MigrationListen { get; private init; }

    public DaemonClient Client { get; }

    public string Kernel => Directory.File("kernel.elf");

    public IReadOnlyList<string> Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToArray();
            }
        }
    }

    public static async Task<DaemonTestHost> StartAsync(IVmmLauncher? launcher = null, string? cgroupName = null, string? migrationListen = null)
    {
        var host = new DaemonTestHost(new TempDirectory(), launcher ?? new InProcessVmmLauncher(), cgroupName) { MigrationListen = migrationListen };
        host.Directory.CreateFile("kernel.elf");
        await host.StartDaemonAsync();
        return host;
    }

    public async Task StartDaemonAsync()
    {
        Server = await DaemonServer.StartAsync(new DaemonOptions
        {
            Runtime = Runtime,
            Launcher = Launcher,
            CgroupName = CgroupName,
            MigrationListen = MigrationListen,
            Log = message =>
            {
                lock (_log)
                {
                    _log.Add(message);
                }
            },
        });
    }

    /// <summary>Stops the daemon (domains keep running), as a daemon restart does.</summary>
    public async Task StopDaemonAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
            Server = null;
        }
    }

    public CreateDomainRequest Request(string? name, string bootArgs = "loop", int vcpus = 1, int memoryMib = 32, string? kernel = null, bool balloon = false) => new()
    {
        Name = name,
        Config = new SharpVisor.Host.Firecracker.FullVmConfiguration
        {
            BootSource = new SharpVisor.Host.Firecracker.BootSource { KernelImagePath = kernel ?? Kernel, BootArgs = bootArgs },
            MachineConfig = new SharpVisor.Host.Firecracker.MachineConfig { VcpuCount = vcpus, MemSizeMib = memoryMib },
            Balloon = balloon ? new SharpVisor.Host.Firecracker.Balloon { AmountMib = 0, DeflateOnOom = true } : null,
        },
    };

    public async ValueTask DisposeAsync()
    {
        if (Server is not null)
        {
            foreach (Domain domain in Server.Registry.List())
            {
                try
                {
                    await Server.Registry.DestroyAsync(domain);
                }
                catch (Exception)
                {
                }
            }
        }

        Server?.Registry.Environment.Cgroups?.RemoveParentIfEmpty();
        await StopDaemonAsync();
        (Launcher as InProcessVmmLauncher)?.KillAll();
        Client.Dispose();
        Directory.Dispose();
    }
}
