using SharpVisor.Boot;
using SharpVisor.Host.Vmm;
using SharpVisor.Kvm;

namespace SharpVisor.Host.Domains;

/// <summary>Builds <see cref="MonitorDomainMachine"/>s: the per-domain VMM's real machines.</summary>
public sealed class MonitorDomainMachineFactory : IDomainMachineFactory
{
    public IDomainMachine Create(DomainMachineSpec spec, Stream serialOutput)
    {
        MachineConfiguration configuration = ToMachineConfiguration(spec, serialOutput);
        try
        {
            return new MonitorDomainMachine(VirtualMachineMonitor.Create(configuration));
        }
        catch (Exception e) when (e is ArgumentException or BootImageException or KvmUnavailableException or IOException or UnauthorizedAccessException)
        {
            throw new DomainConfigurationException(e.Message, e);
        }
    }

    public IDomainMachine Restore(string statePath, string memoryPath, Stream serialOutput, Action<string>? log)
    {
        try
        {
            return new MonitorDomainMachine(VirtualMachineMonitor.Restore(statePath, memoryPath, c => c with { SerialOutput = serialOutput, Log = log }));
        }
        catch (Exception e) when (e is SharpVisor.Machine.Snapshots.SnapshotException or ArgumentException or BootImageException or IOException or UnauthorizedAccessException)
        {
            throw new DomainConfigurationException(e.Message, e);
        }
    }

    public IDomainMachine ReceiveMigration(Stream stream, Stream serialOutput, Action<string>? log) =>
        new MonitorDomainMachine(VirtualMachineMonitor.ReceiveMigration(stream, c => c with { SerialOutput = serialOutput, Log = log }));

    /// <summary>The machine configuration a domain's spec turns into (what <see cref="Create"/> builds).</summary>
    public static MachineConfiguration ToMachineConfiguration(DomainMachineSpec spec, Stream serialOutput)
    {
        AcceleratorKind accelerator = spec.Accelerator switch
        {
            "auto" => AcceleratorKind.Auto,
            "kvm" => AcceleratorKind.Kvm,
            "emulator" => AcceleratorKind.Emulator,
            _ => throw new DomainConfigurationException($"accelerator '{spec.Accelerator}' is not one of kvm, emulator, auto"),
        };
        return new MachineConfiguration
        {
            KernelPath = spec.KernelPath,
            Name = spec.Name,
            InitrdPath = spec.InitrdPath,
            CommandLine = spec.CommandLine,
            MemorySize = spec.MemoryBytes,
            VcpuCount = spec.VcpuCount,
            Accelerator = accelerator,
            SerialOutput = serialOutput,
            Xen = spec.Xen,
            BootTimer = spec.BootTimer,

            // Firecracker's order: the root drive first (/dev/vda); the drive id is the disk's serial.
            Disks = spec.Drives.Select(d => new DiskConfiguration(d.Path, d.ReadOnly, d.Id, d.CacheMode) { RateLimit = d.RateLimit }).ToArray(),
            NetworkInterfaces = spec.NetworkInterfaces.Select(n => new NetworkInterfaceConfiguration
            {
                Id = n.Id,
                TapName = n.TapName,
                Mac = n.GuestMac is { } mac ? ParseMac(mac) : null,
                RxRateLimit = n.RxRateLimit,
                TxRateLimit = n.TxRateLimit,
                Interceptor = n.Interceptor,
            }).ToArray(),
            Balloon = spec.BalloonTargetMib is long target
                ? new BalloonConfiguration
                {
                    InitialTargetMib = target,
                    DeflateOnOom = spec.BalloonDeflateOnOom,
                    StatisticsIntervalSeconds = spec.BalloonStatisticsIntervalSeconds,
                }
                : null,

            // Like Firecracker, no entropy device unless PUT /entropy asked for one.
            EntropyDevice = spec.EntropyDevice,
            Vsock = spec.Vsock,
            Protection = spec.Protection,
            Log = spec.Log ?? System.Console.Error.WriteLine,
        };
    }

    private static MacAddress ParseMac(string text)
    {
        try
        {
            return MacAddress.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new DomainConfigurationException(e.Message, e);
        }
    }
}
