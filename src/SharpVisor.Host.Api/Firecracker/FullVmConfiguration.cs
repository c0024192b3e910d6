using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The whole VM configuration: the answer to GET /vm/config and the format of a
/// --config-file (and of `sharpvisor create CONFIG`). Sections SharpVisor does not
/// implement are parsed only to be refused with a clear message.
/// </summary>
public sealed record FullVmConfiguration
{
    [JsonPropertyName("boot-source")]
    public BootSource? BootSource { get; init; }

    [JsonPropertyName("machine-config")]
    public MachineConfig? MachineConfig { get; init; }

    [JsonPropertyName("drives")]
    public List<Drive>? Drives { get; init; }

    [JsonPropertyName("network-interfaces")]
    public List<NetworkInterface>? NetworkInterfaces { get; init; }

    [JsonPropertyName("balloon")]
    public Balloon? Balloon { get; init; }

    [JsonPropertyName("cpu-config")]
    public JsonElement? CpuConfig { get; init; }

    [JsonPropertyName("logger")]
    public LoggerConfiguration? Logger { get; init; }

    [JsonPropertyName("metrics")]
    public MetricsConfiguration? Metrics { get; init; }

    [JsonPropertyName("memory-hotplug")]
    public JsonElement? MemoryHotplug { get; init; }

    [JsonPropertyName("mmds-config")]
    public JsonElement? MmdsConfig { get; init; }

    [JsonPropertyName("pmem")]
    public JsonElement? Pmem { get; init; }

    [JsonPropertyName("vsock")]
    public Vsock? Vsock { get; init; }

    [JsonPropertyName("entropy")]
    public EntropyDevice? Entropy { get; init; }

    /// <summary>SharpVisor's extension: kernel runtime protection (docs/security.md).</summary>
    [JsonPropertyName("sharpvisor-protection")]
    public ProtectionConfiguration? Protection { get; init; }
}
