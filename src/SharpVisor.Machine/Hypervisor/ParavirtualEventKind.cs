namespace SharpVisor.Machine.Hypervisor;

/// <summary>How an event reached a paravirtualized CPU.</summary>
public enum ParavirtualEventKind
{
    /// <summary>An exception the processor raised (#GP of a privileged instruction, #PF, #UD, ...).</summary>
    Exception,

    /// <summary>INT n, INT3, INTO, INT1 executed by the guest.</summary>
    Software,

    /// <summary>An external interrupt (for a PV domain: its event-channel upcall).</summary>
    External,

    Nmi,
}
