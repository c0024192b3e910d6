using System.Text.Json.Serialization;
using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Source-generated JSON for SharpVisor's own API (the daemon's and the VMM's extensions):
/// snake_case names, enums as strings, unknown and duplicate fields rejected.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    RespectNullableAnnotations = true,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(VmmStatus))]
[JsonSerializable(typeof(DomainCounters))]
[JsonSerializable(typeof(PowerRequest))]
[JsonSerializable(typeof(XenStoreListing))]
[JsonSerializable(typeof(XenChannelListing))]
[JsonSerializable(typeof(XenStoreNode))]
[JsonSerializable(typeof(ProtectionConfiguration))]
[JsonSerializable(typeof(ProtectionStatus))]
[JsonSerializable(typeof(ProtectionEvent))]
public sealed partial class ControlJsonContext : JsonSerializerContext
{
}
