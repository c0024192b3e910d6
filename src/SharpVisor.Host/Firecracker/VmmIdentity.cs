namespace SharpVisor.Host.Firecracker;

/// <summary>Who a per-domain VMM is: its instance id (the domain name), the numeric domain id and its accelerator choice.</summary>
public sealed record VmmIdentity(string InstanceId, int DomainId, string Accelerator)
{
    public static VmmIdentity Anonymous { get; } = new("anonymous-instance", 0, "auto");
}
