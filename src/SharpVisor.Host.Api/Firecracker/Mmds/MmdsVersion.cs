namespace SharpVisor.Host.Firecracker.Mmds;

/// <summary>MMDS protocol versions: V1 answers any GET; V2 answers only with a session token.</summary>
public enum MmdsVersion
{
    V1,
    V2,
}
