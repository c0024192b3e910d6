namespace SharpVisor.Host.Firecracker;

/// <summary>The body of PUT /logger (and the config file's "logger" section).</summary>
public sealed record LoggerConfiguration
{
    public string? LogPath { get; init; }

    /// <summary>Error, Warning, Info, Debug, Trace or Off (case-insensitive); Info when absent.</summary>
    public string? Level { get; init; }

    public bool? ShowLevel { get; init; }

    public bool? ShowLogOrigin { get; init; }

    /// <summary>Only lines whose origin starts with this module path are written.</summary>
    public string? Module { get; init; }
}
