namespace SharpVisor.Emulator.Translator;

/// <summary>
/// Process-wide settings of the translating tier, read once from the environment:
/// <c>SHARPVISOR_TIER</c> (interpreter, auto, always, native), <c>SHARPVISOR_TIER1_THRESHOLD</c> (runs
/// of a block before it is queued for compilation), <c>SHARPVISOR_TIER1_LOOP_HEAT</c> (what a run inside a loop counts) and <c>SHARPVISOR_TIER1_CACHE</c> (the most
/// translated blocks kept; the oldest are evicted past it), <c>SHARPVISOR_TIER1_REGION</c> (the
/// most blocks of one page compiled into one method; 1: every block alone) and
/// <c>SHARPVISOR_TIER1_REGION_THRESHOLD</c> (runs of a compiled block before its region is compiled).
/// </summary>
public static class TranslatorSettings
{
    private static ExecutionTier s_tier = ParseTier(Environment.GetEnvironmentVariable("SHARPVISOR_TIER")) ?? ExecutionTier.Auto;

    /// <summary>
    /// The tier new CPUs start with (<c>sharpvisor run --tier</c> sets it before the machine is built):
    /// <c>auto</c> unless <c>SHARPVISOR_TIER</c> says otherwise (docs/emulator.md, "Tiers").
    /// </summary>
    public static ExecutionTier DefaultTier
    {
        get => s_tier;
        set => s_tier = value;
    }

    /// <summary>
    /// Runs of a block before it is queued for compilation (<c>SHARPVISOR_TIER1_THRESHOLD</c>).
    /// A block costs about 0.7 ms of JIT CPU time, which a block must repay by running; at 1000 a
    /// boot compiled 3,700 blocks in 2.7 s of CPU, at 64,000 about 200 blocks in 0.3 s that still
    /// run three quarters of its instructions (docs/emulator.md, "Fourth step").
    /// </summary>
    public static int HotThreshold { get; set; } = ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_TIER1_THRESHOLD"), 64_000, 1, 1 << 30);

    /// <summary>
    /// What one run of a block counts towards <see cref="HotThreshold"/> while the interpreter runs
    /// a loop within one page (<c>SHARPVISOR_TIER1_LOOP_HEAT</c>; 1: every run counts one). A loop
    /// such as the kernel's inflate runs for about a second and then never again: at one per run
    /// half of its instructions were interpreted before its blocks were compiled (docs/emulator.md,
    /// "Seventh step"), while straight-line code keeps the full threshold.
    /// </summary>
    public static int LoopHeat { get; set; } = ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_TIER1_LOOP_HEAT"), 16, 1, 1 << 16);

    public static int CacheCapacity { get; set; } = ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_TIER1_CACHE"), 16384, 16, 1 << 24);

    /// <summary>Runs of a compiled block in the chain loop before it is compiled again with its region (<c>SHARPVISOR_TIER1_REGION_THRESHOLD</c>).</summary>
    public static int RegionThreshold { get; set; } = ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_TIER1_REGION_THRESHOLD"), 500_000, 1, 1 << 30);

    /// <summary>Runs of a block before the native tier encodes it (<c>SHARPVISOR_NATIVE_THRESHOLD</c>; docs/emulator.md, "Tenth step").</summary>
    public static int NativeThreshold { get; set; } = ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_NATIVE_THRESHOLD"), 50, 1, 1 << 30);

    /// <summary>Bytes of one vCPU's native code buffer (<c>SHARPVISOR_NATIVE_CODE_MB</c>, default 16 MiB); a full buffer starts over.</summary>
    public static long NativeCodeBytes { get; set; } = (long)ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_NATIVE_CODE_MB"), 16, 1, 1024) << 20;

    public static int RegionBlocks { get; set; } = ParseInt(Environment.GetEnvironmentVariable("SHARPVISOR_TIER1_REGION"), 8, 1, 64);

    /// <summary>Parses a tier name as <c>--tier</c> and <c>SHARPVISOR_TIER</c> spell it; null if it is none.</summary>
    public static ExecutionTier? ParseTier(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "interpreter" or "0" => ExecutionTier.Interpreter,
        "auto" or "1" => ExecutionTier.Auto,
        "always" => ExecutionTier.Always,
        "native" => ExecutionTier.Native,
        _ => null,
    };

    private static int ParseInt(string? text, int fallback, int min, int max) =>
        int.TryParse(text, out int value) && value >= min && value <= max ? value : fallback;
}
