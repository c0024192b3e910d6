namespace SharpVisor.Emulator.Translator;

/// <summary>
/// A block compiled by tier 1. Runs the block's instructions from the first and returns how many
/// it executed: the whole block, or up to and including the one that asked to leave
/// (<see cref="X86Cpu._exitBlock"/> set), exactly as the interpreter's loop would have.
/// The delegate is closed over the <see cref="Block"/> (the compiled method's first parameter),
/// so invoking it calls the method directly rather than through an argument-shuffling stub.
/// </summary>
internal delegate int TranslatedBlock(X86Cpu cpu, ref Op ops);
