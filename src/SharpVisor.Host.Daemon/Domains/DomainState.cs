namespace SharpVisor.Host.Domains;

/// <summary>A domain's state as the toolstack shows it (Xen's r, p, s, c, d).</summary>
public enum DomainState
{
    Running,
    Paused,

    /// <summary>The guest powered off (or was forced off by shutdown); kept until destroyed.</summary>
    Shutdown,

    /// <summary>The guest crashed or its VMM process died; kept (on_crash=preserve) until destroyed.</summary>
    Crashed,

    /// <summary>Being destroyed: its VMM is being killed and its resources released.</summary>
    Dying,
}
