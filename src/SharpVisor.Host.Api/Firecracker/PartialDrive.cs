namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PATCH /drives/{drive_id}: a new backing file and/or rate limiter.</summary>
public sealed record PartialDrive
{
    public required string DriveId { get; init; }

    public string? PathOnHost { get; init; }

    public RateLimiter? RateLimiter { get; init; }
}
