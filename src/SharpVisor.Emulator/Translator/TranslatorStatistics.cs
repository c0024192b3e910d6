namespace SharpVisor.Emulator.Translator;

/// <summary>What the tier-1 code cache has done in this process.</summary>
/// <param name="Compiled">Blocks compiled.</param>
/// <param name="Evicted">Translations dropped to stay within the cache's capacity.</param>
/// <param name="Failed">Blocks the translator could not compile (they stay interpreted).</param>
/// <param name="Resident">Translations currently installed.</param>
/// <param name="IlBytes">CIL bytes of the resident translations (a size measure of the cache).</param>
/// <param name="JitTime">CPU time spent emitting and compiling (the compiling threads' CPU clock), over all threads.</param>
public readonly record struct TranslatorStatistics(long Compiled, long Evicted, long Failed, long Resident, long IlBytes, TimeSpan JitTime);
