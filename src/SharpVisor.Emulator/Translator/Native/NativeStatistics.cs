namespace SharpVisor.Emulator.Translator.Native;

/// <summary>What the native back end has done in this process (all vCPUs).</summary>
/// <param name="Compiled">Blocks encoded to native code.</param>
/// <param name="CodeBytes">Bytes of native code written (over all buffer generations).</param>
/// <param name="EncodeTime">CPU time spent encoding (the vCPU threads' CPU clock).</param>
/// <param name="Resets">Times a vCPU's code buffer was full and started over.</param>
/// <param name="Failed">Blocks the compiler failed on (they stay interpreted).</param>
public readonly record struct NativeStatistics(long Compiled, long CodeBytes, TimeSpan EncodeTime, long Resets, long Failed);
