using SharpVisor.Boot;
using SharpVisor.Host.Vmm;
using SharpVisor.Kvm;

namespace SharpVisor.Host.Domains;

/// <summary>Builds <see cref="MonitorDomainMachine"/>s: the per-domain VMM's real machines.</summary>
public sealed class MonitorDomainMachineFactory : IDomainMachineFactory
{
    public IDomainMachine Create(MachineConfiguration configuration, Stream serialOutput)
    {
        try
        {
            if (configuration.Xen == XenMode.Driver)
            {
                return XenDriverDomainMachine.Start(WithConsole(configuration, serialOutput));
            }

            return new MonitorDomainMachine(VirtualMachineMonitor.Create(WithConsole(configuration, serialOutput)));
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

    /// <summary>The configuration a domain's machine is built from: the front end's, with its console and a log.</summary>
    public static MachineConfiguration WithConsole(MachineConfiguration configuration, Stream serialOutput) =>
        configuration with { SerialOutput = serialOutput, Log = configuration.Log ?? System.Console.Error.WriteLine };
}
