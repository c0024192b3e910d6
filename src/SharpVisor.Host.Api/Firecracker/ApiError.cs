namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's Error body, used for every 4xx/5xx answer of both APIs.</summary>
public sealed record ApiError
{
    public required string FaultMessage { get; init; }
}
