using System.Text.Json.Serialization;

namespace SharpVisor.Host.Migration;

/// <summary>Source-generated JSON for the migration requests (trimming-safe).</summary>
[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
public sealed partial class MigrationJsonContext : JsonSerializerContext
{
}
