namespace SharpVisor.Devices.Virtio;

/// <summary>One validated descriptor of a chain: a guest range the device may read or write.</summary>
public readonly record struct VirtqBuffer(ulong Address, int Length, bool Writable);
