using System.Text.Json.Serialization;

namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /metrics (and the config file's "metrics" section).</summary>
public sealed record MetricsConfiguration
{
    public required string MetricsPath { get; init; }

    /// <summary>Writes the instance id as a top-level "id" on each metrics line.</summary>
    public bool? EmitId { get; init; }

    /// <summary>Operator-defined pairs written under "properties" on each metrics line.</summary>
    [JsonPropertyName("properties")]
    public Dictionary<string, string>? Properties { get; init; }
}
