namespace SharpVisor.Emulator;

/// <summary>Which execution tiers an <see cref="X86Cpu"/> uses.</summary>
public enum ExecutionTier
{
    /// <summary>Tier 0 only: every block is interpreted (pre-bound handlers, one indirect call per instruction).</summary>
    Interpreter,

    /// <summary>Tier 0, and tier 1 for hot blocks: a block run often is compiled to CIL on a background thread.</summary>
    Auto,

    /// <summary>Every block is compiled before its first run, on the vCPU's thread (for the differential suite and tests).</summary>
    Always,

    /// <summary>
    /// Tier 0, and native x86-64 code for blocks run <see cref="Translator.TranslatorSettings.NativeThreshold"/>
    /// times, encoded on the vCPU's thread (opt-in; docs/emulator.md, "Tenth step").
    /// </summary>
    Native,
}
