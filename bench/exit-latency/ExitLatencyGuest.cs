using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Bench.ExitLatency;

/// <summary>
/// The benchmark guest, shared byte for byte with kvm-exit.c: 32-bit protected mode, flat
/// segments, no paging, loaded at <see cref="LoadAddress"/>. ECX (set by the host) is the
/// number of <c>out</c> exits to <see cref="LoopPort"/>; one final <c>out</c> to
/// <see cref="DonePort"/> ends the run.
/// </summary>
public static class ExitLatencyGuest
{
    public const ulong LoadAddress = 0x1000;
    public const ushort LoopPort = 0x10;
    public const ushort DonePort = 0x11;

    public static byte[] Assemble()
    {
        var a = new Assembler(32);
        Label loop = a.CreateLabel();
        Label self = a.CreateLabel();
        a.xor(eax, eax);
        a.Label(ref loop);
        a.@out((byte)LoopPort, al);
        a.dec(ecx);
        a.jnz(loop);
        a.@out((byte)DonePort, al);
        a.Label(ref self);
        a.jmp(self);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), LoadAddress);
        return stream.ToArray();
    }
}
