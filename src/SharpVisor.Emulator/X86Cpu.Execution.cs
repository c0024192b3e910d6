using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>The run loop and the cache of decoded blocks.</summary>
public sealed unsafe partial class X86Cpu
{
    private const int MaxBlockInstructions = 64;
    private const int JumpCacheSize = 4096;

    // Exit requests raised by a handler in the middle of a block.
    internal const int ExitNone = 0;

    /// <summary>Leave the block after this instruction and continue at the next one (code was overwritten, mode changed).</summary>
    internal const int ExitAfter = 1;

    /// <summary>Leave the block; the handler has set RIP (jumps, restarted REP instructions).</summary>
    internal const int ExitJump = 2;

    internal int _exitBlock;
    internal bool _halted;

    private readonly Dictionary<ulong, Block> _blocks = new();
    private readonly Dictionary<ulong, List<Block>> _codePages = new();
    // Linear-address lookups, one array per privilege context so user code never reuses a block
    // that was looked up (fetch-checked) at CPL 0; _jumpCache is the current one. An entry is
    // valid while its stamp is current (JumpCacheEntry).
    private readonly JumpCacheEntry[] _supervisorJumpCache = new JumpCacheEntry[JumpCacheSize];
    private readonly JumpCacheEntry[] _userJumpCache = new JumpCacheEntry[JumpCacheSize];
    private JumpCacheEntry[] _jumpCache = null!;
    private readonly HashSet<ulong> _breakpoints = new();
    private readonly HashSet<ulong> _reportedUnimplemented = new();
    private readonly BlockCodeReader _codeReader = new();
    private readonly Decoder?[] _decoders = new Decoder?[3];
    private readonly Op[] _scratchOps = new Op[MaxBlockInstructions];
    private readonly Instruction[] _scratchInstructions = new Instruction[MaxBlockInstructions];
    private readonly byte[] _splitBuffer = new byte[32];

    internal Block? _block;
    private int _opIndex;
    private bool _inBlock;
    private long _instructions;
    private long _runLimit;

    // What the run loop must look at between blocks, one bit per reason, so that the check
    // between two blocks is one load and compare: a stop request (also from other threads), a
    // latched NMI, an interrupt window, breakpoints. The bit is the state itself (no separate
    // field to keep in step) and every change is atomic (Interlocked), so a stop request from
    // another thread is never lost to a concurrent change made by the CPU's own thread.
    private const int AttentionStop = 1;
    private const int AttentionNmi = 2;
    private const int AttentionInterruptWindow = 4;
    private const int AttentionBreakpoints = 8;
    private const int AttentionEvents = AttentionNmi | AttentionInterruptWindow;
    private int _attention;

    /// <summary>Number of blocks decoded since creation (a cache-efficiency figure).</summary>
    public long BlocksDecoded { get; private set; }

    /// <summary>Block lookups the jump cache did not answer (a TLB fetch and the block dictionary instead).</summary>
    public long JumpCacheMisses { get; private set; }

    /// <summary>Stops before executing the instruction at RIP <paramref name="rip"/> (except as the first instruction of a Run call).</summary>
    public void AddBreakpoint(ulong rip)
    {
        _breakpoints.Add(rip);
        SetAttention(AttentionBreakpoints, true);
        FlushCodeCache();
    }

    public void ClearBreakpoints()
    {
        _breakpoints.Clear();
        SetAttention(AttentionBreakpoints, false);
        FlushCodeCache();
    }

    /// <summary>Asks a running <see cref="Run"/> to return at the next block boundary; callable from any thread.</summary>
    public void RequestStop() => SetAttention(AttentionStop, true);

    /// <summary>
    /// From the CPU's own thread while it runs (the guest wrote its local APIC or CR8): returns
    /// from <see cref="Run"/> right after the current instruction, so the platform can deliver an
    /// interrupt that became deliverable, at that instruction boundary as on hardware.
    /// </summary>
    public void RequestEventCheck()
    {
        SetAttention(AttentionStop, true);
        EndBlockAfterThis();
    }

    /// <summary>The attention bits now; a fresh read every time (another thread may have set <see cref="AttentionStop"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Attention() => Volatile.Read(ref _attention);

    /// <summary>
    /// Whether a loop running in place (the interpreter's, or a translated self-loop's back edge)
    /// must go back to the run loop for what <paramref name="attention"/> says: a stop, breakpoints,
    /// or an NMI or interrupt window that could be taken now. An event that must wait (NMIs
    /// blocked, IF clear) does not end a loop: a spin loop with interrupts off would otherwise
    /// return to the run loop on every iteration.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool LoopMustLeave(int attention) => attention != 0 && AttentionEndsLoop(attention);

    private bool AttentionEndsLoop(int attention) =>
        (attention & (AttentionStop | AttentionBreakpoints)) != 0
        || ((attention & AttentionNmi) != 0 && !_nmiBlocked)
        || ((attention & AttentionInterruptWindow) != 0 && (_flags & RflagsBits.Interrupt) != 0);

    private void SetAttention(int bit, bool on)
    {
        if (on)
        {
            Interlocked.Or(ref _attention, bit);
        }
        else
        {
            Interlocked.And(ref _attention, ~bit);
        }
    }

    /// <summary>
    /// Runs until HLT, a breakpoint, a stop request, <paramref name="maxInstructions"/> retired
    /// instructions or, unless <see cref="DeliverExceptions"/> is set, an exception (returned, not
    /// delivered). In system mode exceptions go through the IDT and only a triple fault ends the
    /// run. A halted CPU, one waiting for SIPI or one shut down returns at once.
    /// </summary>
    public CpuRunResult Run(long maxInstructions = long.MaxValue)
    {
        _tracking.EnterGuest();
        try
        {
            return RunInGuest(maxInstructions);
        }
        finally
        {
            _tracking.LeaveGuest();
        }
    }

    private CpuRunResult RunInGuest(long maxInstructions)
    {
        _runLimit = maxInstructions >= long.MaxValue - _instructions ? long.MaxValue : _instructions + maxInstructions;
        bool first = true;
        long deliveries = 0;
        while (true)
        {
            if (_shutdownReason is not null)
            {
                return new CpuRunResult(CpuStopReason.TripleFault, Detail: _shutdownReason);
            }

            if (_waitingForStartup)
            {
                return new CpuRunResult(CpuStopReason.WaitingForStartup);
            }

            if (_halted && !TakeLatchedNmiInHalt())
            {
                return new CpuRunResult(CpuStopReason.Halted);
            }

            try
            {
                return RunBlocks(first);
            }
            catch (CpuException e)
            {
                ulong faultRip = _rip;
                if (_inBlock)
                {
                    Block block = _block!;
                    ref Op op = ref block.Ops[_opIndex];
                    ulong blockRip = _regs[RegisterFile.BlockRip];
                    faultRip = (blockRip + op.Offset) & _ipMask;
                    _rip = (blockRip + (e.IsSoftwareInterrupt ? (ulong)op.NextOffset : op.Offset)) & _ipMask;
                    _instructions += _opIndex + (e.IsSoftwareInterrupt ? 1 : 0);
                    _inBlock = false;
                    _exitBlock = ExitNone;
                    _rmwPending = false;
                }

                if (!DeliverExceptions)
                {
                    return new CpuRunResult(CpuStopReason.Exception, e);
                }

                RaiseException(e, faultRip);
                first = false; // a breakpoint on the handler stops the run

                // A handler that faults before retiring anything (its code unmapped) would loop here
                // forever: deliveries count against the budget, so Run still returns.
                if (++deliveries > maxInstructions || _instructions + deliveries >= _runLimit)
                {
                    return new CpuRunResult(CpuStopReason.InstructionLimit);
                }
            }
        }
    }

    private CpuRunResult RunBlocks(bool first)
    {
        Block? previous = null;
        while (true)
        {
            int attention = Attention();
            if ((attention & AttentionStop) != 0)
            {
                SetAttention(AttentionStop, false);
                return new CpuRunResult(CpuStopReason.StopRequested);
            }

            if (_tracking.PassBoundary())
            {
                ServiceWriteTracking();
            }

            // The CPU's own thread alone changes the NMI, window and breakpoint bits: the value
            // read above still holds for them.
            if ((attention & AttentionEvents) != 0 && ServiceEventRequests())
            {
                return _shutdownReason is not null
                    ? new CpuRunResult(CpuStopReason.TripleFault, Detail: _shutdownReason)
                    : new CpuRunResult(CpuStopReason.InterruptWindow);
            }

            if (_instructions >= _runLimit)
            {
                return new CpuRunResult(CpuStopReason.InstructionLimit);
            }

            if ((attention & AttentionBreakpoints) != 0 && !first && _breakpoints.Contains(_rip))
            {
                return new CpuRunResult(CpuStopReason.Breakpoint);
            }

            first = false;
            if (DeliverExceptions && DebugStepNeeded)
            {
                if (DebugStep())
                {
                    return new CpuRunResult(CpuStopReason.Halted);
                }

                previous = null;
                continue;
            }

            Block block;
            if (previous is not null && _is64 && previous.NextEpoch == _chainEpoch)
            {
                // Chained successors: the common case, no cache lookup.
                Block? next = previous.Next;
                if (next is not null && next.Linear == _rip && next.Valid)
                {
                    block = next;
                }
                else if ((next = previous.NextOther) is not null && next.Linear == _rip && next.Valid)
                {
                    // Left in place, not swapped to the front: a branch alternating between its two
                    // targets would pay two GC write barriers per run (the chain loop does the same).
                    block = next;
                }
                else
                {
                    block = LookupBlock();
                    previous.NextOther = previous.Next;
                    previous.Next = block;
                }
            }
            else
            {
                block = LookupBlock();
                if (previous is not null && _is64)
                {
                    previous.Next = block;
                    previous.NextOther = null;
                    previous.NextEpoch = _chainEpoch;
                }
            }

            // A back edge within a page makes the blocks run until the code leaves that page
            // count as loop runs (TranslatorSettings.LoopHeat).
            if (previous is null || ((block.Linear ^ previous.Linear) >> 12) != 0)
            {
                _heatStep = 1;
            }
            else if (block.Linear <= previous.Linear)
            {
                _heatStep = Translator.TranslatorSettings.LoopHeat;
            }

            int cpl = _cpl;
            if (block.Translated is not null && CanChainTranslated(block))
            {
                // Tier 1 runs block after block here while the successors are compiled.
                block = RunTranslatedChain(block);
            }
            else
            {
                ExecuteBlockWithinShadow(block);
            }
            if (_halted)
            {
                if (TakeLatchedNmiInHalt())
                {
                    previous = null;
                    continue;
                }

                return new CpuRunResult(CpuStopReason.Halted);
            }

            // Chaining needs the same mode and privilege; a change of either ends the chain.
            previous = (int)(block.Key & 7) == (int)_mode && cpl == _cpl ? block : null;
        }
    }

    /// <summary>
    /// Runs a block; while an interrupt window is wanted and an STI/MOV SS shadow is active, only
    /// up to the instruction that ends the shadow, so the window opens exactly there.
    /// </summary>
    private void ExecuteBlockWithinShadow(Block block)
    {
        if (!InterruptWindowRequested || !InInterruptShadow || _interruptShadowEnd + 1 >= _runLimit)
        {
            ExecuteBlock(block);
            return;
        }

        long limit = _runLimit;
        _runLimit = _interruptShadowEnd + 1;
        try
        {
            ExecuteBlock(block);
        }
        finally
        {
            _runLimit = limit;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ExecuteBlock(Block block)
    {
        ulong blockRip = _rip;
        _regs[RegisterFile.BlockRip] = blockRip;
        _block = block;
        _inBlock = true;
        _chaining = false; // a fault may have left RunTranslatedChain without clearing it
        ref Op first = ref MemoryMarshal.GetArrayDataReference(block.Ops);
        int count = block.Count;
        Translator.TranslatedBlock? code = null;
        while (true)
        {
            // Every run counts towards the block's heat, in-place loop iterations included.
            code ??= TranslatedCodeFor(block);
            long remaining = _runLimit - _instructions;
            int n = remaining < count ? (int)remaining : count;
            int i;
            if (code is not null && n == count)
            {
                // Tier 1: the whole block, or up to the instruction that asked to leave.
                i = code(this, ref first);
                TranslatedInstructions += i;
            }
            else
            {
                i = 0;
                while (true)
                {
                    _opIndex = i;
                    ref Op op = ref Unsafe.Add(ref first, i);
                    op.Handler(this, ref op);
                    i++;
                    if (_exitBlock != ExitNone || i == n)
                    {
                        break;
                    }
                }
            }

            ref Op last = ref Unsafe.Add(ref first, i - 1);
            bool loopAgain = false;
            if (_exitBlock != ExitNone)
            {
                if (_exitBlock == ExitAfter)
                {
                    _rip = (blockRip + (ulong)last.NextOffset) & _ipMask;
                }
                else if (_rip == blockRip && block.Valid && !LoopMustLeave(Attention()) && !_tracking.PassBoundary())
                {
                    // A loop whose back edge targets this block's start: run it again in place
                    // (a boundary for the write tracking too; with reports waiting, leave to apply them).
                    loopAgain = true;
                    _heatStep = Translator.TranslatorSettings.LoopHeat;
                }

                _exitBlock = ExitNone;
            }
            else
            {
                _rip = (blockRip + (ulong)last.NextOffset) & _ipMask;
            }

            _instructions += i;
            if (!loopAgain || _instructions >= _runLimit)
            {
                break;
            }
        }

        _inBlock = false;
    }

    /// <summary>The block at RIP: the jump cache's entry when it is current (the common case, kept small), else <see cref="LookupBlockMiss"/>.</summary>
    private Block LookupBlock()
    {
        ulong linear = _is64 ? _rip : LegacyCodeLinear();
        ref JumpCacheEntry entry = ref _jumpCache[JumpCacheSlot(linear)];
        Block? block = entry.Block;
        if (block is not null && IsCurrent(entry.Stamp) && block.Valid && block.Linear == linear && (int)(block.Key & 7) == (int)_mode)
        {
            return block;
        }

        return LookupBlockMiss(linear, ref entry);
    }

    /// <summary>Outside 64-bit mode: RIP through CS, with its limit checked.</summary>
    private ulong LegacyCodeLinear()
    {
        if (_rip > _segs[SegCs].Limit && _mode != CpuMode.Real)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        return (uint)(_segs[SegCs].Base + _rip);
    }

    /// <summary>A jump cache miss: the block through the TLB and the block dictionary (decoded if new), entered in the cache.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Block LookupBlockMiss(ulong linear, ref JumpCacheEntry entry)
    {
        JumpCacheMisses++;
        nint page = FetchPage(linear, out ulong physicalPage);
        ulong physical = physicalPage | (linear & 0xFFF);
        ulong key = (physical << 3) | (ulong)_mode;
        if (!_blocks.TryGetValue(key, out Block? block) || !SecondPageMatches(block, linear))
        {
            block = DecodeBlock(linear, physical, (byte*)page);
        }

        // Every block the jump caches and chain links can reach comes through here: note the
        // linear pages it was fetched from, so an INVLPG of another page need not drop them. A
        // lookup made through global translations only (the kernel's text) survives CR3 loads,
        // as those translations do in the TLB: Linux loads CR3 thousands of times in a boot.
        PageAccess fetch = PageAccess.Execute | _privilegeAccess;
        bool global = _tlb.IsGlobal(linear, fetch);
        ulong secondPage = ulong.MaxValue;
        if (block.SecondPage != ulong.MaxValue)
        {
            ulong next = (linear & PageMask) + 0x1000;
            secondPage = _is64 ? next : (uint)next;
            global &= _tlb.IsGlobal(secondPage, fetch);
        }

        HashSet<ulong> pages = global ? _globalLookedUpPages : _lookedUpPages;
        pages.Add(linear >> 12);
        if (secondPage != ulong.MaxValue)
        {
            pages.Add(secondPage >> 12);
        }

        block.Linear = linear;
        entry.Block = block;
        entry.Stamp = global ? _globalLookupStamp : _lookupStamp;
        return block;
    }

    /// <summary>Whether a jump cache entry with this stamp was made since the flushes that apply to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsCurrent(uint stamp) => stamp == _lookupStamp || stamp == _globalLookupStamp;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int JumpCacheSlot(ulong linear) => (int)((linear ^ (linear >> 12)) & (JumpCacheSize - 1));

    private bool SecondPageMatches(Block block, ulong linear)
    {
        if (block.SecondPage == ulong.MaxValue)
        {
            return true;
        }

        ulong next = (linear & PageMask) + 0x1000;
        FetchPage(_is64 ? next : (uint)next, out ulong physicalPage);
        return physicalPage == block.SecondPage;
    }

    /// <summary>Drops every linear-address block lookup and chain link.</summary>
    private void FlushJumpCache()
    {
        _globalLookedUpPages.Clear();
        _globalLookupStamp++;
        FlushNonGlobalLookups();
    }

    /// <summary>
    /// A CR3 load: drops the block lookups and chain links except lookups made through global
    /// pages only, whose translations the TLB keeps too (SDM 4.10.4.1).
    /// </summary>
    private void FlushNonGlobalLookups()
    {
        _lookedUpPages.Clear();
        _lookupStamp++;
        _chainEpoch++;
        if (_lookupStamp == GlobalLookupStampBit || _globalLookupStamp == 0)
        {
            // A stamp ran out (after 2^31 flushes): really clear, and start both over.
            Array.Clear(_supervisorJumpCache);
            Array.Clear(_userJumpCache);
            _globalLookedUpPages.Clear();
            _lookupStamp = 1;
            _globalLookupStamp = GlobalLookupStampBit | 1;
        }
    }

    /// <summary>
    /// After the TLB entry of one linear page was dropped (INVLPG): the linear-address block
    /// lookups must go only if some were made through that page. Linux invalidates data pages
    /// (fixmap, kmap, page-table updates) thousands of times in a boot; dropping every lookup and
    /// chain link each time sent the run loop back to the block dictionary for all its code.
    /// </summary>
    private void FlushJumpCachePage(ulong linear)
    {
        if (_lookedUpPages.Contains(linear >> 12) || _globalLookedUpPages.Contains(linear >> 12))
        {
            FlushJumpCache();
        }
    }

    private int _chainEpoch;

    // Linear page numbers (both pages of a straddling block) that LookupBlock fetched blocks from
    // since the jump caches and chain links were last cleared: a superset of the pages any of them
    // depend on.
    private readonly HashSet<ulong> _lookedUpPages = new();

    // The same for lookups made through global translations only (kept across CR3 loads).
    private readonly HashSet<ulong> _globalLookedUpPages = new();

    // Jump cache stamps: entries made through non-global pages carry _lookupStamp (advanced by
    // every flush), the others _globalLookupStamp (advanced by flushes that drop global
    // translations too); the top bit keeps the two apart. 0 is never current (an empty entry).
    private const uint GlobalLookupStampBit = 0x8000_0000;
    private uint _lookupStamp = 1;
    private uint _globalLookupStamp = GlobalLookupStampBit | 1;

    /// <summary>A linear-address block lookup: the block and the stamp of the flushes it has seen.</summary>
    private struct JumpCacheEntry
    {
        public Block? Block;
        public uint Stamp;
    }

    /// <summary>Drops every decoded block.</summary>
    public void FlushCodeCache()
    {
        foreach (Block b in _blocks.Values)
        {
            b.Valid = false;
        }

        _blocks.Clear();
        foreach (ulong page in _codePages.Keys)
        {
            _tracking.Untrack(page, TrackReason.Code);
        }

        _codePages.Clear();
        FlushJumpCache();
        if (_inBlock)
        {
            _exitBlock = _exitBlock == ExitNone ? ExitAfter : _exitBlock;
        }
    }

    /// <summary>
    /// Drops decoded blocks overlapping guest physical range [physical, physical+length): call after
    /// writing guest code behind the CPU's back (DMA, the VMM loading an image).
    /// </summary>
    public void InvalidateCode(ulong physical, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        ulong last = physical + length - 1;
        for (ulong page = physical & PageMask; page <= (last & PageMask); page += 0x1000)
        {
            if (IsCodePage(page))
            {
                InvalidateCodePage(page);
            }

            if (page + 0x1000 < page)
            {
                break;
            }
        }
    }

    private bool IsCodePage(ulong physicalPage) => _codePages.ContainsKey(physicalPage);

    private void InvalidateCodePage(ulong physicalPage)
    {
        if (!_codePages.Remove(physicalPage, out List<Block>? blocks))
        {
            return;
        }

        _tracking.Untrack(physicalPage, TrackReason.Code);
        foreach (Block b in blocks)
        {
            if (!b.Valid)
            {
                continue;
            }

            b.Valid = false;
            if (_blocks.TryGetValue(b.Key, out Block? cached) && ReferenceEquals(cached, b))
            {
                _blocks.Remove(b.Key);
            }

            if (_inBlock && ReferenceEquals(b, _block) && _exitBlock == ExitNone)
            {
                // The running block was overwritten: finish this instruction, then decode afresh.
                _exitBlock = ExitAfter;
            }
        }
    }

    private void RegisterCodePage(ulong physicalPage, Block block) => TrackCodePage(physicalPage).Add(block);

    /// <summary>
    /// The blocks decoded from a page, tracking the page (machine-wide) first if it had none:
    /// call before reading code from it, so that no store to it can go unreported after the read.
    /// </summary>
    private List<Block> TrackCodePage(ulong physicalPage)
    {
        if (!_codePages.TryGetValue(physicalPage, out List<Block>? list))
        {
            list = new List<Block>();
            _codePages.Add(physicalPage, list);
            _tracking.Track(physicalPage, TrackReason.Code);
        }

        return list;
    }

    private Decoder DecoderFor(int bitness)
    {
        int index = bitness == 64 ? 2 : bitness == 32 ? 1 : 0;
        // AMD honours an operand-size prefix on near branches in 64-bit mode (16-bit RET/CALL/JMP/Jcc,
        // RIP truncated to 16 bits); Intel ignores it. Iced decodes either way.
        return _decoders[index] ??= Decoder.Create(bitness, _codeReader, _amd ? DecoderOptions.AMD : DecoderOptions.None);
    }

    private Block DecodeBlock(ulong linear, ulong physical, byte* page)
    {
        TrackCodePage(physical & PageMask);
        int bitness = Bitness;
        Decoder decoder = DecoderFor(bitness);
        int start = (int)(linear & 0xFFF);
        int pageRemaining = 0x1000 - start;
        _codeReader.Reset(page + start, pageRemaining, 0);
        decoder.IP = 0;
        int count = 0;
        int offset = 0;
        bool endsWithJump = false;
        ulong secondPage = ulong.MaxValue;
        var binder = new InstructionBinder(this, bitness);
        while (count < MaxBlockInstructions)
        {
            if (count > 0 && (Attention() & AttentionBreakpoints) != 0 && _breakpoints.Contains((_rip + (ulong)offset) & _ipMask))
            {
                break;
            }

            ref Instruction ins = ref _scratchInstructions[count];
            decoder.Decode(out ins);
            if (decoder.LastError == DecoderError.NoMoreBytes)
            {
                if (count > 0)
                {
                    break;
                }

                // The first instruction straddles the page end: decode it from a buffer holding both pages.
                secondPage = DecodeSplit(linear, page + start, pageRemaining, decoder, ref ins);
            }

            ref Op op = ref _scratchOps[count];
            op = default;
            binder.InstructionBytes = secondPage != ulong.MaxValue ? null : page + start + offset;
            op.Offset = (ushort)offset;
            op.Length = (byte)ins.Length;
            op.Number = (ushort)count;
            bool ends = binder.Bind(in ins, ref op);
            count++;
            offset += ins.Length;
            if (ends)
            {
                endsWithJump = true;
                break;
            }

            if (offset >= pageRemaining)
            {
                break;
            }

            decoder.IP = (ulong)offset;
        }

        var block = new Block(_scratchOps[..count], _scratchInstructions[..count], count)
        {
            Key = (physical << 3) | (ulong)_mode,
            PhysicalAddress = physical,
            SecondPage = secondPage,
            ByteLength = offset,
            EndsWithJump = endsWithJump,
        };
        BlocksDecoded++;
        _blocks[block.Key] = block;
        RegisterCodePage(physical & PageMask, block);
        if (secondPage != ulong.MaxValue)
        {
            RegisterCodePage(secondPage, block);
        }

        return block;
    }

    private ulong DecodeSplit(ulong linear, byte* tail, int tailLength, Decoder decoder, ref Instruction ins)
    {
        ulong next = (linear & PageMask) + 0x1000;
        next = _is64 ? next : (uint)next;
        nint nextPage = FetchPage(next, out ulong secondPhysical);
        TrackCodePage(secondPhysical);
        int total = Math.Min(15, tailLength + 0x1000);
        for (int i = 0; i < total; i++)
        {
            _splitBuffer[i] = i < tailLength ? tail[i] : ((byte*)nextPage)[i - tailLength];
        }

        fixed (byte* buffer = _splitBuffer)
        {
            _codeReader.Reset(buffer, total, 0);
            decoder.IP = 0;
            decoder.Decode(out ins);
        }

        return secondPhysical;
    }

    /// <summary>Reports an unimplemented instruction once per address and raises #UD.</summary>
    internal void RaiseUnimplemented(ref Op op)
    {
        ulong rip = (_regs[RegisterFile.BlockRip] + op.Offset) & _ipMask;
        if (_reportedUnimplemented.Add(rip))
        {
            Instruction ins = _block!.Instructions[op.Number];
            byte[] bytes = new byte[op.Length];
            try
            {
                ulong linear = _is64 ? rip : (uint)(_segs[SegCs].Base + rip);
                ReadBytes(linear, bytes);
            }
            catch (CpuException)
            {
            }

            Diagnostics?.Invoke($"unimplemented instruction at RIP 0x{rip:x}: {ins} (bytes {Convert.ToHexString(bytes).ToLowerInvariant()}), raising #UD");
        }

        throw new CpuException(ExceptionVector.InvalidOpcode);
    }
}
