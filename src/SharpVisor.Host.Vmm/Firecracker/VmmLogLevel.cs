namespace SharpVisor.Host.Firecracker;

/// <summary>Firecracker's log levels, most severe first; a logger at one level writes it and those before it.</summary>
public enum VmmLogLevel
{
    Off = 0,
    Error = 1,
    Warning = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}
