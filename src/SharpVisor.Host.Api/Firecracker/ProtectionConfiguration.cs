using System.Text.Json.Serialization;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// SharpVisor's extension to Firecracker's configuration: kernel runtime protection
/// (docs/security.md). In a config file it is the "sharpvisor-protection" section; on the API,
/// the body of PUT /sharpvisor/protection. <see cref="Policy"/> is what --protect takes.
/// </summary>
public sealed record ProtectionConfiguration
{
    [JsonPropertyName("policy")]
    public required string Policy { get; init; }
}
