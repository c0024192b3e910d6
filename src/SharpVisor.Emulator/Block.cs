using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>
/// A run of decoded instructions that starts at one guest address and ends at a control
/// transfer, a page end or a size cap. Cached by physical address and CPU mode.
/// </summary>
internal sealed class Block
{
    public Block(Op[] ops, Instruction[] instructions, int count)
    {
        Ops = ops;
        Instructions = instructions;
        Count = count;
    }

    public Op[] Ops { get; }

    public Instruction[] Instructions { get; }

    public int Count { get; }

    /// <summary>Cache key: physical address and mode.</summary>
    public ulong Key;

    /// <summary>Linear address of the first instruction (CS base + RIP) the block was last entered at.</summary>
    public ulong Linear;

    public ulong PhysicalAddress;

    /// <summary>Physical page of the last instruction's tail when it straddles a page, else ulong.MaxValue.</summary>
    public ulong SecondPage = ulong.MaxValue;

    public int ByteLength;

    /// <summary>The last op transfers control itself (sets RIP), so there is no fall-through.</summary>
    public bool EndsWithJump;

    /// <summary>Cleared when guest code in the block's page(s) is overwritten.</summary>
    public bool Valid = true;

    // The last two blocks that followed this one (64-bit mode), so the run loop can skip the
    // lookup; valid while the CPU's chain epoch (bumped on TLB flushes) is unchanged.
    public Block? Next;
    public Block? NextOther;
    public int NextEpoch;

    // Tier 1: runs counted by the interpreter, whether the block was handed to the compiler, and
    // its compiled code (installed by the compiler thread, dropped when evicted).
    public int Heat;
    public bool TranslationQueued;

    // Set when the block, compiled alone, ran hot enough in tier 1 to be compiled again with its region.
    public bool RegionQueued;
    public Translator.TranslatedBlock? Translated;
    public int TranslatedIlBytes;
}
