namespace SharpVisor.Host.Domains;

/// <summary>Builds a machine from a validated configuration; its serial output goes to <paramref name="serialOutput"/>.</summary>
public interface IDomainMachineFactory
{
    /// <summary>Throws <see cref="DomainConfigurationException"/> when the images or devices cannot be used.</summary>
    IDomainMachine Create(DomainMachineSpec spec, Stream serialOutput);
}
