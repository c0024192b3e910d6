namespace SharpVisor.Xen;

/// <summary>A split driver's state in XenStore (xen/include/public/io/xenbus.h), written as its decimal number.</summary>
public enum XenbusState
{
    Unknown = 0,
    Initialising = 1,
    InitWait = 2,
    Initialised = 3,
    Connected = 4,
    Closing = 5,
    Closed = 6,
    Reconfiguring = 7,
    Reconfigured = 8,
}
