namespace SharpVisor.Host.Domains;

/// <summary>A configuration the machine cannot be built from (bad kernel image, missing file, unsupported device).</summary>
public sealed class DomainConfigurationException : Exception
{
    public DomainConfigurationException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
