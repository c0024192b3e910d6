namespace SharpVisor.Xen;

/// <summary>
/// What the guest's netfront takes on receive, from its xenbus keys: partial checksums
/// (NETRXF_csum_blank, unless `feature-no-csum-offload`) and large TCP packets in many rx slots
/// with GSO extra info (`feature-sg` with `feature-gso-tcpv4` / `feature-gso-tcpv6`). netback
/// asks its port for these, so the host hands over only what the guest understands.
/// </summary>
[Flags]
public enum XenReceiveOffloads
{
    None = 0,
    Checksum = 1,
    TcpV4 = 2,
    TcpV6 = 4,
}
