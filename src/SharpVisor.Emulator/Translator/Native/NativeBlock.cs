namespace SharpVisor.Emulator.Translator.Native;

/// <summary>
/// A block's native code: an entry address per instruction that native code runs inline
/// (<see cref="Entries"/>; 0 where the interpreter's handler runs the instruction). Native code
/// entered at instruction i runs inline instructions from i on and returns the index of the
/// first it did not run (a handler's instruction, a TLB miss, a branch target it cannot take),
/// or the block's count; a taken branch sets RIP and <see cref="X86Cpu._exitBlock"/> and returns
/// the index after it. <see cref="X86Cpu.RunNative"/> runs the handlers in between.
/// </summary>
internal sealed class NativeBlock
{
    public NativeBlock(Block block, NativeCodeBuffer buffer, nint[] entries, int codeBytes, bool selfLoop)
    {
        SelfLoop = selfLoop;
        Block = block;
        Buffer = buffer;
        Generation = buffer.Generation;
        Entries = entries;
        CodeBytes = codeBytes;
    }

    public Block Block { get; }

    public NativeCodeBuffer Buffer { get; }

    /// <summary>The buffer's generation the code was written in: a later one has overwritten it.</summary>
    public int Generation { get; }

    public nint[] Entries { get; }

    public int CodeBytes { get; }

    /// <summary>The block has a branch to its own start that native code takes without returning, while <see cref="X86Cpu.RunNative"/> gives it a loop budget.</summary>
    public bool SelfLoop { get; }

    /// <summary>The block's <see cref="TranslatedBlock"/> (the delegate is closed over this object).</summary>
    public int Run(X86Cpu cpu, ref Op first) => cpu.RunNative(this, ref first);
}
