using System.Text.Json.Serialization;

namespace SharpVisor.Host.Firecracker;

/// <summary>The answer to GET /version.</summary>
public sealed record FirecrackerVersion
{
    [JsonPropertyName("firecracker_version")]
    public required string Version { get; init; }
}
