using System.Text.Json.Serialization;

namespace SharpVisor.Host.Firecracker;

/// <summary>Source-generated JSON for the handover memfd (no reflection: the front end is NativeAOT).</summary>
[JsonSerializable(typeof(VmmHandoverState))]
public sealed partial class VmmHandoverJsonContext : JsonSerializerContext
{
}
