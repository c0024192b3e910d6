using System.Text.Json;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The body of PUT /cpu-config: Firecracker's custom CPU template. Parsed in full, so that a
/// malformed template gets Firecracker's deserialization error; what SharpVisor cannot apply
/// is refused by <see cref="VmConfiguration.SetCpuConfiguration"/> with the reason.
/// </summary>
public sealed record CpuConfiguration
{
    /// <summary>x86_64: KVM capabilities to require ("56") or drop ("!56").</summary>
    public List<string>? KvmCapabilities { get; init; }

    public List<CpuidLeafModifier>? CpuidModifiers { get; init; }

    public List<MsrModifier>? MsrModifiers { get; init; }

    /// <summary>aarch64 only.</summary>
    public List<JsonElement>? RegModifiers { get; init; }

    /// <summary>aarch64 only.</summary>
    public List<JsonElement>? VcpuFeatures { get; init; }
}
