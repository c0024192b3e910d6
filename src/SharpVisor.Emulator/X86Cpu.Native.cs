using System.Runtime.CompilerServices;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Translator;
using SharpVisor.Emulator.Translator.Native;

namespace SharpVisor.Emulator;

/// <summary>The CPU's side of the native back end (<see cref="ExecutionTier.Native"/>): compiling a hot block and running its native code between handlers.</summary>
public sealed unsafe partial class X86Cpu
{
    private static NativeLayout? s_nativeLayout;

    // This vCPU's code buffer, mapped at the first native compile; null if the system refused it.
    private NativeCodeBuffer? _nativeCode;
    private bool _nativeUnavailable;

    // Guest instructions a native self-loop may still retire at its back edges in this call,
    // beyond one whole block (set before each call, counted down by the code).
    private int _nativeLoopBudget;

    /// <summary>
    /// The most instructions a native self-loop retires in one call: native code runs without a
    /// GC transition, so a loop must come back to managed code regularly (and to the write
    /// tracker's boundary, which other vCPUs may wait for): about 0.1 ms.
    /// </summary>
    private const int NativeLoopCap = 1 << 16;

    /// <summary>Bytes of this vCPU's code buffer when it is mapped (<see cref="TranslatorSettings.NativeCodeBytes"/>; tests make it small).</summary>
    internal long NativeCodeCapacity { get; set; } = TranslatorSettings.NativeCodeBytes;

    /// <summary>Instructions retired by native code itself (inline forms; the handlers it returns to are not counted here).</summary>
    public long NativeInstructions { get; private set; }

    /// <summary>The process-wide native back end's counters.</summary>
    public static NativeStatistics NativeStatistics => NativeCompiler.Statistics;

    /// <summary>Encodes <paramref name="block"/> to native code on this thread and installs it; the block stays interpreted if native code is unavailable.</summary>
    private TranslatedBlock? CompileNative(Block block)
    {
        if (_nativeUnavailable)
        {
            return null;
        }

        if (_nativeCode is null)
        {
            _nativeCode = NativeCodeBuffer.TryCreate(NativeCodeCapacity);
            if (_nativeCode is null)
            {
                _nativeUnavailable = true;
                return null;
            }
        }

        NativeLayout layout = s_nativeLayout ??= ComputeNativeLayout();
        NativeBlock native;
        try
        {
            native = NativeCompiler.Compile(block, (int)(block.Key & 7) == (int)CpuMode.Long64, layout, _nativeCode);
        }
        catch (Exception)
        {
            // A compiler bug (the guest chose only the block's instructions): the block stays
            // interpreted and the failure is counted, rather than the vCPU going down.
            NativeCompiler.CountFailure();
            return null;
        }

        TranslatedBlock code = native.Run;
        block.Translated = code;
        return code;
    }

    // The stop request's address for native code, which reads it with a plain load (an x86 load has acquire semantics).
#pragma warning disable CS0420
    private NativeLayout ComputeNativeLayout()
    {
        ref byte regs = ref Unsafe.As<RegisterFile, byte>(ref _regs);
        return new NativeLayout(
            Lazy: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<int, byte>(ref _lazy)),
            LazyA: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<ulong, byte>(ref _lazyA)),
            LazyB: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<ulong, byte>(ref _lazyB)),
            LazyRes: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<ulong, byte>(ref _lazyRes)),
            LazyCarry: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<ulong, byte>(ref _lazyCarry)),
            Rip: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<ulong, byte>(ref _rip)),
            ExitBlock: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<int, byte>(ref _exitBlock)),
            SegBase: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<SegmentBases, byte>(ref _segBase)),
            Attention: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<int, byte>(ref _attention)),
            AttentionLeaveMask: AttentionStop | AttentionBreakpoints,
            LoopBudget: (int)Unsafe.ByteOffset(ref regs, ref Unsafe.As<int, byte>(ref _nativeLoopBudget)));
    }
#pragma warning restore CS0420

    /// <summary>
    /// Runs a block with native code (its <see cref="TranslatedBlock"/>): native code for the
    /// inline instructions, the interpreter's handler for the others exactly as
    /// <see cref="ExecuteBlock"/> runs them (<see cref="_opIndex"/> set first, so a fault is
    /// precise), until the block ends or an instruction asks to leave. Returns the instructions
    /// run. The call into native code has no GC transition: the pinned CPU cannot move and no
    /// GC can start while it runs, which is why native code is a leaf that always returns soon
    /// (no loops; a block's back edge returns).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int RunNative(NativeBlock native, ref Op first)
    {
        Block block = native.Block;
        if (!ReferenceEquals(_block, block))
        {
            // The handlers below may fault or find the block overwritten: they read _block, which
            // the chain loop does not store (a GC write barrier per block; see RunTranslatedChainCore).
            _block = block;
        }

        int count = block.Count;
        nint[] entries = native.Entries;
        if (native.Generation != native.Buffer.Generation)
        {
            // The buffer started over since this code was written: back to the interpreter, to heat up again.
            block.Translated = null;
            block.Heat = 0;
            block.TranslationQueued = false;
            entries = new nint[count];
        }

        int i = 0;
        fixed (ulong* regs = &_regs[0])
        fixed (TlbEntry* tlb = _tlbEntries)
        {
            while (true)
            {
                nint entry = entries[i];
                if (entry != 0)
                {
                    // Back edges to the block's start taken in native code, under the in-place loop's
                    // conditions (ExecuteBlock): checked here for the whole call, the stop request
                    // again at every back edge; an iteration is taken only while a whole block
                    // still fits the run's budget after it, so the budget ends the run exactly
                    // where the interpreter ends it.
                    int budget = 0;
                    if (native.SelfLoop && block.Valid && !LoopMustLeave(Attention()) && !_tracking.PassBoundary())
                    {
                        budget = (int)Math.Clamp(_runLimit - _instructions - count, 0, NativeLoopCap);
                    }

                    _nativeLoopBudget = budget;
                    var code = (delegate* unmanaged[SuppressGCTransition]<ulong*, TlbEntry*, ulong, ulong, int>)entry;
                    int next = code(regs, tlb + _tlbContextBase, _tlb.Stamp, (ulong)_tlbSlotMask);
                    NativeInstructions += next - i;
                    if (budget != 0)
                    {
                        long looped = budget - _nativeLoopBudget;
                        _instructions += looped;
                        TranslatedInstructions += looped;
                        NativeInstructions += looped;
                    }

                    i = next;
                    if (_exitBlock != ExitNone || i == count)
                    {
                        return i;
                    }
                }

                _opIndex = i;
                ref Op op = ref Unsafe.Add(ref first, i);
                op.Handler(this, ref op);
                i++;
                if (_exitBlock != ExitNone || i == count)
                {
                    return i;
                }
            }
        }
    }
}
