namespace SharpVisor.Host.Domains;

/// <summary>
/// I/O done by one device: requests and bytes in each direction (read = device to guest). Kind
/// ("block", "net", ...) tells devices of the same name apart; null for the console's counters.
/// </summary>
public sealed record DeviceCounters(string Name, long ReadRequests, long ReadBytes, long WriteRequests, long WriteBytes, string? Kind = null);
