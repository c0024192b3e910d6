using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Domains;

/// <summary>Builds a machine from a validated configuration; its serial output goes to <paramref name="serialOutput"/>.</summary>
public interface IDomainMachineFactory
{
    /// <summary>Throws <see cref="DomainConfigurationException"/> when the images or devices cannot be used.</summary>
    IDomainMachine Create(MachineConfiguration configuration, Stream serialOutput);

    /// <summary>Builds the machine a snapshot describes, its state loaded, not yet started (docs/snapshot.md).</summary>
    IDomainMachine Restore(string statePath, string memoryPath, Stream serialOutput, Action<string>? log) =>
        throw new NotSupportedException("this VMM cannot load snapshots");

    /// <summary>Live migration's destination side: the machine built from the stream, ready to start once the source committed.</summary>
    IDomainMachine ReceiveMigration(Stream stream, Stream serialOutput, Action<string>? log) =>
        throw new NotSupportedException("this VMM cannot receive migrations");
}
