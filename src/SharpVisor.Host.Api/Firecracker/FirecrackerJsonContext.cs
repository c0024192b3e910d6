using System.Text.Json.Serialization;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Source-generated JSON for the Firecracker API: snake_case names, unknown fields and
/// duplicate fields rejected, nulls where a value is required rejected, nulls not written.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    AllowDuplicateProperties = false,
    WriteIndented = false)]
[JsonSerializable(typeof(BootSource))]
[JsonSerializable(typeof(SnapshotCreateParameters))]
[JsonSerializable(typeof(SnapshotLoadParameters))]
[JsonSerializable(typeof(MachineConfig))]
[JsonSerializable(typeof(MachineConfigurationPatch))]
[JsonSerializable(typeof(Drive))]
[JsonSerializable(typeof(NetworkInterface))]
[JsonSerializable(typeof(Balloon))]
[JsonSerializable(typeof(BalloonUpdate))]
[JsonSerializable(typeof(BalloonStats))]
[JsonSerializable(typeof(BalloonStatsUpdate))]
[JsonSerializable(typeof(InstanceActionInfo))]
[JsonSerializable(typeof(InstanceInfo))]
[JsonSerializable(typeof(VmState))]
[JsonSerializable(typeof(FirecrackerVersion))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(FullVmConfiguration))]
[JsonSerializable(typeof(LoggerConfiguration))]
[JsonSerializable(typeof(MetricsConfiguration))]
[JsonSerializable(typeof(EntropyDevice))]
[JsonSerializable(typeof(Vsock))]
[JsonSerializable(typeof(PartialDrive))]
[JsonSerializable(typeof(SerialDevice))]
[JsonSerializable(typeof(PartialNetworkInterface))]
[JsonSerializable(typeof(CpuConfiguration))]
[JsonSerializable(typeof(SharpVisor.Host.Firecracker.Mmds.MmdsConfiguration))]
public sealed partial class FirecrackerJsonContext : JsonSerializerContext
{
}
