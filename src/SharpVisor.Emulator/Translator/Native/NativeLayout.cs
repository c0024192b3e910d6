namespace SharpVisor.Emulator.Translator.Native;

/// <summary>
/// Where the CPU state native code touches lies, in bytes from the register file's first slot
/// (<see cref="X86Cpu._regs"/>): the object's layout is fixed for its type, so one CPU's offsets
/// are every CPU's. Native code addresses all of it from one base register.
/// </summary>
internal readonly record struct NativeLayout(int Lazy, int LazyA, int LazyB, int LazyRes, int LazyCarry, int Rip, int ExitBlock, int SegBase, int Attention, int AttentionLeaveMask, int LoopBudget);
