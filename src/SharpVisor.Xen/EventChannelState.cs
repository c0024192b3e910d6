namespace SharpVisor.Xen;

/// <summary>An event channel's binding, numbered as EVTCHNOP_status reports it.</summary>
public enum EventChannelState
{
    Closed = 0,
    Unbound = 1,
    Interdomain = 2,
    Pirq = 3,
    Virq = 4,
    Ipi = 5,
}
