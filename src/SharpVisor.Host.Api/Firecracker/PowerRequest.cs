namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The body of PUT /sharpvisor/power, a SharpVisor extension to the Firecracker API:
/// "PowerButton" (ACPI, graceful) or "PowerOff" (pull the plug).
/// </summary>
public sealed record PowerRequest
{
    public const string PowerButton = "PowerButton";
    public const string PowerOff = "PowerOff";

    public required string Action { get; init; }

    /// <summary>Why, for the domain's stop report.</summary>
    public string? Reason { get; init; }
}
