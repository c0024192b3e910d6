namespace SharpVisor.Devices.Virtio.Vsock;

/// <summary>Where a vsock connection is in its life.</summary>
public enum VsockConnectionState
{
    /// <summary>A host program connected to uds_path; its "CONNECT PORT\n" line is being read.</summary>
    AwaitingConnectLine,

    /// <summary>The REQUEST went to the guest; its RESPONSE (or RST) is awaited.</summary>
    AwaitingResponse,

    /// <summary>Data flows both ways.</summary>
    Established,
}
