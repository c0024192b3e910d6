using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Daemon;

/// <summary>The body of POST /domains: a name, an accelerator and the Firecracker-style configuration.</summary>
public sealed record CreateDomainRequest
{
    public string? Name { get; init; }

    /// <summary>"kvm", "emulator" or "auto" (the default).</summary>
    public string? Accelerator { get; init; }

    /// <summary>"pc" (the default), "pvh", "hvm" or "pv" (<see cref="DomainTypes"/>).</summary>
    public string? Type { get; init; }

    public required FullVmConfiguration Config { get; init; }
}
