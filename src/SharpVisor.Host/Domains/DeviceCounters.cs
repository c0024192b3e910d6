namespace SharpVisor.Host.Domains;

/// <summary>I/O done by one device: requests and bytes in each direction (read = device to guest).</summary>
public sealed record DeviceCounters(string Name, long ReadRequests, long ReadBytes, long WriteRequests, long WriteBytes);
