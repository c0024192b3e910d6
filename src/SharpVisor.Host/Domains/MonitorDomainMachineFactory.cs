using SharpVisor.Boot;
using SharpVisor.Host.Vmm;
using SharpVisor.Kvm;

namespace SharpVisor.Host.Domains;

/// <summary>Builds <see cref="MonitorDomainMachine"/>s: the per-domain VMM's real machines.</summary>
public sealed class MonitorDomainMachineFactory : IDomainMachineFactory
{
    public IDomainMachine Create(DomainMachineSpec spec, Stream serialOutput)
    {
        AcceleratorKind accelerator = spec.Accelerator switch
        {
            "auto" => AcceleratorKind.Auto,
            "kvm" => AcceleratorKind.Kvm,
            _ => throw new DomainConfigurationException($"accelerator '{spec.Accelerator}' is not available yet (kvm or auto)"),
        };
        if (spec.Drives.Count > 0)
        {
            throw new DomainConfigurationException("drives need virtio-block, which this VMM does not have yet");
        }

        if (spec.NetworkInterfaces.Count > 0)
        {
            throw new DomainConfigurationException("network interfaces need virtio-net, which this VMM does not have yet");
        }

        if (spec.BalloonTargetMib is not null)
        {
            throw new DomainConfigurationException("a balloon needs virtio-balloon, which this VMM does not have yet");
        }

        var configuration = new MachineConfiguration
        {
            KernelPath = spec.KernelPath,
            InitrdPath = spec.InitrdPath,
            CommandLine = spec.CommandLine,
            MemorySize = spec.MemoryBytes,
            VcpuCount = spec.VcpuCount,
            Accelerator = accelerator,
            SerialOutput = serialOutput,
        };
        try
        {
            return new MonitorDomainMachine(VirtualMachineMonitor.Create(configuration));
        }
        catch (Exception e) when (e is ArgumentException or BootImageException or KvmUnavailableException or IOException or UnauthorizedAccessException)
        {
            throw new DomainConfigurationException(e.Message, e);
        }
    }
}
