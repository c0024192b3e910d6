namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PATCH /vm (Firecracker's "Vm" definition): Paused or Resumed.</summary>
public sealed record VmState
{
    public const string Paused = "Paused";
    public const string Resumed = "Resumed";

    public required string State { get; init; }
}
