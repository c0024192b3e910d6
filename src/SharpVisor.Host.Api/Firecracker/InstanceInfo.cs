namespace SharpVisor.Host.Firecracker;

/// <summary>The answer to GET /: who this VMM is and the state of its machine.</summary>
public sealed record InstanceInfo
{
    public const string NotStarted = "Not started";
    public const string Running = "Running";
    public const string Paused = "Paused";

    public required string AppName { get; init; }

    public required string Id { get; init; }

    public required string State { get; init; }

    public required string VmmVersion { get; init; }
}
