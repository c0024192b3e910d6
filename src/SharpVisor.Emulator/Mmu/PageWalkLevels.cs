using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator.Mmu;

/// <summary>One value per paging level of a walk, root first (at most four levels).</summary>
[InlineArray(MaxLevels)]
public struct PageWalkLevels
{
    public const int MaxLevels = 4;

    private ulong _level0;
}
