namespace SharpVisor.Xen.Pv;

/// <summary>One loadable segment of a PV kernel: its bytes at a pseudo-physical address, zero-filled up to <see cref="MemorySize"/>.</summary>
public sealed record PvKernelSegment(ulong PhysicalAddress, ReadOnlyMemory<byte> Data, ulong MemorySize);
