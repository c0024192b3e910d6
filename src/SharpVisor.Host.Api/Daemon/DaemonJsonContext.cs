using System.Text.Json.Serialization;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Daemon;

/// <summary>Source-generated JSON for the daemon's API and files: snake_case, unknown and duplicate fields rejected.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(CreateDomainRequest))]
[JsonSerializable(typeof(DomainInfo))]
[JsonSerializable(typeof(List<DomainInfo>))]
[JsonSerializable(typeof(DomainSchedule))]
[JsonSerializable(typeof(ScheduleRequest))]
[JsonSerializable(typeof(ShutdownRequest))]
[JsonSerializable(typeof(RebootRequest))]
[JsonSerializable(typeof(ShutdownResult))]
[JsonSerializable(typeof(MemoryRequest))]
[JsonSerializable(typeof(SnapshotRequest))]
[JsonSerializable(typeof(RestoreDomainRequest))]
[JsonSerializable(typeof(VcpuPinRequest))]
[JsonSerializable(typeof(DomainStats))]
[JsonSerializable(typeof(List<DomainStats>))]
[JsonSerializable(typeof(DomainRecord))]
[JsonSerializable(typeof(FullVmConfiguration))]
[JsonSerializable(typeof(ApiError))]
public sealed partial class DaemonJsonContext : JsonSerializerContext
{
}
