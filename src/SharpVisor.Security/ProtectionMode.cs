namespace SharpVisor.Security;

/// <summary>What a violation does: refused and reported (<see cref="Enforce"/>), or only reported (<see cref="Log"/>).</summary>
public enum ProtectionMode
{
    Enforce,
    Log,
}
