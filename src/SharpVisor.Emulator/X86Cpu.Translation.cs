using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Translator;

namespace SharpVisor.Emulator;

/// <summary>The CPU's side of the translating tier: which tier runs, block heat, and the TLB probes translated code inlines.</summary>
public sealed partial class X86Cpu
{
    private ExecutionTier _tier = TranslatorSettings.DefaultTier;

    // Set while RunTranslatedChain runs compiled code: only then may a region's code switch blocks.
    private bool _chaining;

    // What the next interpreted run of a block adds to its heat: TranslatorSettings.LoopHeat
    // since a back edge within one page, 1 again once the code leaves that page (RunBlocks).
    private int _heatStep = 1;

    /// <summary>
    /// The running block's address and whether translated code runs it, read from another thread
    /// without synchronisation (<see cref="Accelerator.RipProfiler"/>): a diagnostic sample only.
    /// </summary>
    internal ulong SampleBlockAddress(out bool translated)
    {
        // The chain loop runs only compiled code, and does not store _block for every block.
        translated = Volatile.Read(ref _chaining) || Volatile.Read(ref _block)?.Translated is not null;
        return Volatile.Read(ref _regs[RegisterFile.BlockRip]);
    }

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
        if (code is not null || _tier == ExecutionTier.Interpreter || block.TranslationQueued)
        {
            return code;
        }

        if (_tier == ExecutionTier.Auto)
        {
            // The default tier's run, here rather than in a call for every interpreted block.
            block.Heat += _heatStep;
            if (block.Heat >= TranslatorSettings.HotThreshold)
            {
                Enqueue(block);
            }

            return null;
        }

        return Heat(block);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Enqueue(Block block)
    {
        block.TranslationQueued = true;
        TranslationCache.Enqueue(block);
    }

    /// <summary>The tiers that compile on the vCPU's thread (always, native): a block not yet queued.</summary>
    private TranslatedBlock? Heat(Block block)
    {
        if (_tier == ExecutionTier.Always)
        {
            block.TranslationQueued = true;
            TranslationCache.CompileNow(block);
            return block.Translated;
        }

        // Native: encoding costs microseconds, done here on the vCPU's thread at a low threshold.
        block.Heat += _heatStep;
        if (block.Heat < TranslatorSettings.NativeThreshold)
        {
            return null;
        }

        block.TranslationQueued = true;
        return CompileNative(block);
    }

    /// <summary>
    /// Whether the run loop may hand <paramref name="block"/> (compiled) to
    /// <see cref="RunTranslatedChain"/>: 64-bit code (the successor links are kept there), a tier
    /// that uses tier-1 code, no breakpoints, debug traps, interrupt window or NMI to watch for
    /// between instructions, and room in the budget for the whole block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CanChainTranslated(Block block) =>
        _is64 && _tier != ExecutionTier.Interpreter && !ChainMustStop() && _runLimit - _instructions >= block.Count;

    /// <summary>What ends a chain of translated blocks (besides a successor that is not compiled): each is a reason for <see cref="RunBlocks"/> to look.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ChainMustStop() =>
        Attention() != 0 || _halted || (DeliverExceptions && DebugStepNeeded);

    /// <summary>
    /// Runs compiled blocks one after another without going back to <see cref="RunBlocks"/>: after
    /// each block the successor is found through the block's links (<see cref="Block.Next"/>, the
    /// same links the run loop keeps) and, if it is compiled and valid and fits the budget, run
    /// at once. Every block boundary does what <see cref="RunBlocks"/> would check there (stop
    /// request, write-tracking boundary, events, mode and privilege change, budget) and returns the
    /// last block run when any of them needs the run loop. Faults leave _block/_opIndex as
    /// <see cref="ExecuteBlock"/> does, so <see cref="RunInGuest"/> finds the precise RIP.
    /// </summary>
    private Block RunTranslatedChain(Block block)
    {
        _chaining = true;
        block = RunTranslatedChainCore(block);
        _chaining = false;
        return block;
    }

    private Block RunTranslatedChainCore(Block block)
    {
        CpuMode mode = _mode;
        int cpl = _cpl;

        // In a block from here to the return (nothing between two blocks reads it; a fault leaves
        // through RunInGuest, which clears it). _block is not stored here: the compiled code
        // stores it before a handler call, the only code that reads it while the block runs
        // (BlockTranslator), so a block of inline code alone pays no GC write barrier for it.
        _inBlock = true;
        while (true)
        {
            TranslatedBlock code = block.Translated!;
            ulong blockRip = _rip;
            _regs[RegisterFile.BlockRip] = blockRip;
            ref Op first = ref MemoryMarshal.GetArrayDataReference(block.Ops);
            int i = code(this, ref first);
            if (++block.Heat == TranslatorSettings.RegionThreshold)
            {
                QueueRegion(block);
            }

            ulong endRip = _regs[RegisterFile.BlockRip];
            if (endRip != blockRip)
            {
                // A region's code went on into another of its blocks (each at its own address) and
                // made it _block before returning: i counts that block's instructions.
                block = _block!;
                blockRip = endRip;
                first = ref MemoryMarshal.GetArrayDataReference(block.Ops);
            }

            TranslatedInstructions += i;
            _instructions += i;
            if (_exitBlock == ExitNone)
            {
                _rip = (blockRip + (ulong)Unsafe.Add(ref first, i - 1).NextOffset) & _ipMask;
            }
            else
            {
                if (_exitBlock == ExitAfter)
                {
                    _rip = (blockRip + (ulong)Unsafe.Add(ref first, i - 1).NextOffset) & _ipMask;
                }

                _exitBlock = ExitNone;
            }

            if (ChainMustStop() || _mode != mode || _cpl != cpl || _tracking.PassBoundary())
            {
                break;
            }

            // The successor through the run loop's links (same epoch: no TLB flush since they were made).
            if (block.NextEpoch != _chainEpoch)
            {
                break;
            }

            Block? next = block.Next;
            if (next is null || next.Linear != _rip)
            {
                next = block.NextOther;
                if (next is null || next.Linear != _rip)
                {
                    // A third target (RET, JMP/CALL r/m): the run loop's jump cache, as LookupBlock
                    // reads it, rather than a return to the run loop; linked like RunBlocks does.
                    ref JumpCacheEntry entry = ref _jumpCache[JumpCacheSlot(_rip)];
                    next = entry.Block;
                    if (next is null || !IsCurrent(entry.Stamp) || next.Linear != _rip || (int)(next.Key & 7) != (int)mode)
                    {
                        break;
                    }

                    block.NextOther = block.Next;
                    block.Next = next;
                }
            }

            if (!next.Valid || next.Translated is null || _runLimit - _instructions < next.Count)
            {
                break;
            }

            block = next;
        }

        _inBlock = false;
        return block;
    }

    /// <summary>
    /// At the back edge of a translated self-loop (the branch to the start of
    /// <paramref name="block"/> was taken): whether to go round again inside the translated code, under the conditions of
    /// <see cref="ExecuteBlock"/>'s in-place loop plus room in the budget for a whole block. If so
    /// the iteration is retired here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ContinueTranslatedLoop(Block block, int count)
    {
        if (!block.Valid || LoopMustLeave(Attention()) || _runLimit - _instructions < 2L * count || _tracking.PassBoundary())
        {
            return false;
        }

        _instructions += count;
        TranslatedInstructions += count;
        return true;
    }

    /// <summary>
    /// A compiled block that keeps running (<see cref="TranslatorSettings.RegionThreshold"/> runs
    /// in the chain loop) is compiled again with its region: regions cost several times a block's
    /// compile time, which only code this hot repays (a boot's run-a-thousand-times code does not).
    /// </summary>
    private void QueueRegion(Block block)
    {
        if (TranslatorSettings.RegionBlocks <= 1 || block.RegionQueued || _tier == ExecutionTier.Native)
        {
            return;
        }

        block.RegionQueued = true;
        if (_tier == ExecutionTier.Always)
        {
            TranslationCache.CompileNow(block);
        }
        else
        {
            TranslationCache.Enqueue(block);
        }
    }

    /// <summary>
    /// Translated code of a region (<see cref="BlockTranslator"/>) at an edge from one of its blocks
    /// to another, <paramref name="next"/> at <paramref name="linear"/>, after
    /// <paramref name="retired"/> instructions of the current block: whether it may go on into
    /// <paramref name="next"/> without returning, under the conditions <see cref="RunTranslatedChain"/>
    /// checks between two blocks (it must be the caller: the code is not inside
    /// <see cref="ExecuteBlock"/>'s loop) plus the same privilege and TLB epoch as at the region's
    /// entry (the blocks share one page, so the entry's mapping is theirs) and the block still
    /// valid. If so the current block's instructions are retired and <paramref name="next"/>
    /// becomes the running block, exactly as if the chain loop had looked it up (the code makes it
    /// <see cref="_block"/> before that is read: a handler call, a return).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal bool EnterRegionBlock(Block next, ulong linear, int retired, int cpl, int epoch)
    {
        if (!_chaining || !next.Valid || _cpl != cpl || _chainEpoch != epoch || _mode != CpuMode.Long64
            || _runLimit - _instructions - retired < next.Count || ChainMustStop() || _tracking.PassBoundary())
        {
            return false;
        }

        _instructions += retired;
        TranslatedInstructions += retired;
        _exitBlock = ExitNone;
        _rip = linear;
        _regs[RegisterFile.BlockRip] = linear;
        next.Linear = linear;
        return true;
    }

    /// <summary>
    /// A region's light edge (<see cref="BlockTranslator"/>): a forward edge reached through inline
    /// code only since the last full check (<see cref="EnterRegionBlock"/>), so only the budget
    /// can stop it. Retires <paramref name="retired"/> instructions and makes
    /// <paramref name="linear"/> the running block's address; the code sets
    /// <see cref="_block"/> itself before it is read (a handler call, a return).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool RetireIntoRegionBlock(ulong linear, int retired, int nextCount)
    {
        if (!_chaining || _runLimit - _instructions - retired < nextCount)
        {
            return false;
        }

        _instructions += retired;
        TranslatedInstructions += retired;
        _rip = linear;
        _regs[RegisterFile.BlockRip] = linear;
        return true;
    }

    /// <summary>
    /// A region's light back edge: like <see cref="RetireIntoRegionBlock"/>, and what other
    /// threads can ask for while inline code runs (a stop, an NMI, an interrupt window, a
    /// breakpoint, a write-tracking boundary) also ends the region, so no loop in it outlives them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool RetireIntoRegionLoop(ulong linear, int retired, int nextCount)
    {
        if (Attention() != 0 || _tracking.PassBoundary())
        {
            return false;
        }

        return RetireIntoRegionBlock(linear, retired, nextCount);
    }
}
