using SharpVisor.Machine.Protection;
using SharpVisor.Memory;

namespace SharpVisor.Security.Tests;

/// <summary>
/// The synthetic kernel "booted" at a KASLR offset: its page tables as a dictionary (linear page
/// to frame and writability), the registers a vCPU would show at its first user-mode entry.
/// </summary>
internal sealed class FakeKernelGuest : IProtectionLockContext, IDisposable
{
    public const ulong Offset = 0x200_0000;
    public const ulong TextFrame = 0x40_0000;
    public const ulong RodataFrame = 0x60_0000;
    public const ulong IdtFrame = 0x80_0000;
    public const ulong Idt = 0xFFFF_FE00_0000_0000;

    private readonly Dictionary<ulong, (ulong Frame, bool Writable)> _pages = new();

    public FakeKernelGuest(bool rodataWritable)
    {
        Memory = GuestMemory.CreateRam(16 << 20);
        for (ulong i = 0; i < 3; i++)
        {
            _pages[SyntheticKernel.TextStart + Offset + (i * 4096)] = (TextFrame + (i * 4096), false);
            _pages[SyntheticKernel.RodataStart + Offset + (i * 4096)] = (RodataFrame + (i * 4096), rodataWritable);
        }

        _pages[Idt] = (IdtFrame, false);
        Memory.Fill(TextFrame, 3 * 4096, 0x90);
    }

    public GuestMemory Memory { get; }

    public int VcpuId => 0;

    public ulong Cr0 => (1UL << 31) | (1UL << 16) | 1;

    public ulong Cr3 => 0x1000;

    public ulong Cr4 => (1UL << 20) | (1UL << 5);

    public ulong Efer => (1UL << 11) | (1UL << 10) | (1UL << 8);

    public ulong Lstar => SyntheticKernel.TextStart + Offset + 0x80;

    public ulong SysenterEip => SyntheticKernel.TextStart + Offset + 0x100;

    public ulong IdtBase => Idt;

    public ushort IdtLimit => 0xFFF;

    /// <summary>A hostile kernel pointing its IDT's mapping somewhere else (e.g. beyond RAM).</summary>
    public void MapIdtTo(ulong frame) => _pages[Idt] = (frame, false);

    public void MakeRodataReadOnly()
    {
        foreach (ulong page in _pages.Keys.ToArray())
        {
            _pages[page] = _pages[page] with { Writable = false };
        }
    }

    public bool TryTranslate(ulong linear, out ulong physicalAddress, out bool writable)
    {
        if (_pages.TryGetValue(linear & ~0xFFFUL, out var page))
        {
            physicalAddress = page.Frame + (linear & 0xFFF);
            writable = page.Writable;
            return true;
        }

        physicalAddress = 0;
        writable = false;
        return false;
    }

    public void Dispose() => Memory.Dispose();
}
