namespace SharpVisor.Host.Domains;

/// <summary>What the toolstack can ask of a domain; each is allowed only in some states.</summary>
public enum DomainOperation
{
    Pause,
    Unpause,
    Shutdown,
    Reboot,
    Destroy,
    SetMemory,
    PinVcpu,
    Schedule,
    Snapshot,

    /// <summary>Read or change the domain's XenStore (xenstore-ls, -read, -write, -rm).</summary>
    XenStore,

    /// <summary>Read or raise the domain's kernel protection, or get an attestation quote (docs/security.md).</summary>
    Protection,
}
