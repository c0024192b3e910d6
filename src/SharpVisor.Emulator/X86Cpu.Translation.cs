using System.Runtime.CompilerServices;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Translator;

namespace SharpVisor.Emulator;

/// <summary>The CPU's side of the translating tier: which tier runs, block heat, and the TLB probes translated code inlines.</summary>
public sealed partial class X86Cpu
{
    private ExecutionTier _tier = TranslatorSettings.DefaultTier;

    /// <summary>The execution tiers this CPU uses (<see cref="TranslatorSettings.DefaultTier"/> at creation).</summary>
    public ExecutionTier Tier
    {
        get => _tier;
        set => _tier = value;
    }

    /// <summary>Instructions retired by tier-1 code (the rest of <see cref="InstructionsExecuted"/> was interpreted, or is a fault's partial block).</summary>
    public long TranslatedInstructions { get; private set; }

    /// <summary>The process-wide tier-1 code cache's counters.</summary>
    public static TranslatorStatistics TranslatorStatistics => TranslationCache.Statistics;

    /// <summary>The block's tier-1 code if it has some; counts the run and hands a hot block to the compiler.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TranslatedBlock? TranslatedCodeFor(Block block)
    {
        TranslatedBlock? code = block.Translated;
        if (code is not null || _tier == ExecutionTier.Interpreter)
        {
            return code;
        }

        return Heat(block);
    }

    private TranslatedBlock? Heat(Block block)
    {
        if (block.TranslationQueued)
        {
            return null;
        }

        if (_tier == ExecutionTier.Always)
        {
            block.TranslationQueued = true;
            TranslationCache.CompileNow(block);
            return block.Translated;
        }

        if (++block.Heat >= TranslatorSettings.HotThreshold)
        {
            block.TranslationQueued = true;
            TranslationCache.Enqueue(block);
        }

        return null;
    }

    /// <summary>
    /// At the back edge of a translated self-loop (the branch to the block's start was taken):
    /// whether to go round again inside the translated code, under the conditions of
    /// <see cref="ExecuteBlock"/>'s in-place loop plus room in the budget for a whole block. If so
    /// the iteration is retired here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ContinueTranslatedLoop(int count)
    {
        if (!_block!.Valid || _stopRequested || _breakpoints.Count != 0 || _runLimit - _instructions < 2L * count || _tracking.PassBoundary())
        {
            return false;
        }

        _instructions += count;
        TranslatedInstructions += count;
        return true;
    }

    /// <summary>The TLB's hit check for a read of <paramref name="size"/> bytes that stays in one page; <paramref name="host"/> is its host address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryReadHost(ulong linear, int size, out nint host)
    {
        ref TlbEntry e = ref TlbFor(linear);
        host = (nint)linear + e.Addend;
        return e.ReadTag == Tag(linear) && (linear & 0xFFF) <= (ulong)(0x1000 - size);
    }

    /// <summary>The TLB's hit check for a write (code pages and tracked frames miss, as in <see cref="Write32"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryWriteHost(ulong linear, int size, out nint host)
    {
        ref TlbEntry e = ref TlbFor(linear);
        host = (nint)linear + e.Addend;
        return e.WriteTag == Tag(linear) && (linear & 0xFFF) <= (ulong)(0x1000 - size);
    }
}
