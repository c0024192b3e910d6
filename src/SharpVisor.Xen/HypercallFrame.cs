using System.Runtime.InteropServices;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// One hypercall's arguments and the only way its handlers touch what the guest handed them:
/// argument registers by the ABI, structures read from and written to guest-virtual addresses,
/// frame numbers, ports and lengths checked against the domain. Every check fails with the Xen
/// errno as a <see cref="XenException"/>, which the dispatcher turns into -errno in RAX.
/// </summary>
internal sealed class HypercallFrame
{
    /// <summary>The largest buffer a hypercall may name (console writes, memory maps): one MiB.</summary>
    public const int MaxBuffer = 1 << 20;

    private static readonly int[] s_arguments64 = [7, 6, 2, 10, 8];   // RDI, RSI, RDX, R10, R8
    private static readonly int[] s_arguments32 = [3, 1, 2, 6, 7];   // EBX, ECX, EDX, ESI, EDI

    private readonly IHypercallContext _context;
    private readonly GuestMemory _memory;

    public HypercallFrame(IHypercallContext context, GuestMemory memory)
    {
        _context = context;
        _memory = memory;
        Op = context.LongMode ? context.GetRegister(0) : (uint)context.GetRegister(0);
    }

    public ulong Op { get; }

    public int VcpuId => _context.VcpuId;

    public IHypercallContext Context => _context;

    /// <summary>Argument <paramref name="index"/> (0-4), truncated to 32 bits for a 32-bit caller.</summary>
    public ulong Argument(int index)
    {
        ulong value = _context.GetRegister((_context.LongMode ? s_arguments64 : s_arguments32)[index]);
        return _context.LongMode ? value : (uint)value;
    }

    /// <summary>A sub-command argument (cmd, vcpu): an int, or EINVAL when it does not fit one.</summary>
    public int IntArgument(int index)
    {
        ulong value = Argument(index);
        return value <= int.MaxValue ? (int)value : throw new XenException(XenErrno.EINVAL, $"argument {index} 0x{value:x} is out of range");
    }

    public T Read<T>(ulong address)
        where T : unmanaged
    {
        T value = default;
        ReadBytes(address, MemoryMarshal.AsBytes(new Span<T>(ref value)));
        return value;
    }

    public void Write<T>(ulong address, T value)
        where T : unmanaged => WriteBytes(address, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(ref value)));

    public void ReadBytes(ulong address, Span<byte> destination)
    {
        if (!_context.TryReadVirtual(address, destination))
        {
            throw new XenException(XenErrno.EFAULT, $"guest buffer 0x{address:x} ({destination.Length} bytes) is not readable");
        }
    }

    public void WriteBytes(ulong address, ReadOnlySpan<byte> source)
    {
        if (!_context.TryWriteVirtual(address, source))
        {
            throw new XenException(XenErrno.EFAULT, $"guest buffer 0x{address:x} ({source.Length} bytes) is not writable");
        }
    }

    /// <summary>A guest-supplied length: EINVAL beyond <paramref name="limit"/>.</summary>
    public static int CheckLength(ulong length, int limit = MaxBuffer) =>
        length <= (ulong)limit ? (int)length : throw new XenException(XenErrno.EINVAL, $"length {length} exceeds {limit}");

    /// <summary>A PV domain's ownership check: its frame numbers are machine frames, and not all of them are its own.</summary>
    public Func<ulong, bool>? FrameOwner { get; init; }

    /// <summary>The guest-physical address of frame <paramref name="gfn"/>, which must be RAM of this domain (for a PV domain: a frame it owns).</summary>
    public ulong RamFrame(ulong gfn) =>
        FrameOwner is null || FrameOwner(gfn) ? RamFrame(_memory, gfn) : throw new XenException(XenErrno.EINVAL, $"machine frame 0x{gfn:x} is not the domain's");

    public static ulong RamFrame(GuestMemory memory, ulong gfn)
    {
        if (gfn >= 1UL << 40 || memory.FindRegion(gfn << 12, 4096) is null or { IsMapTarget: true })
        {
            throw new XenException(XenErrno.EINVAL, $"frame 0x{gfn:x} is not RAM of this domain");
        }

        return gfn << 12;
    }
}
