namespace SharpVisor.Interop;

/// <summary>
/// .NET runtime settings a VMM process starts with, set by whoever starts it (the `sharpvisor`
/// launcher, the daemon, the NativeAOT front end's handover) unless the user set them already.
/// <c>DOTNET_TC_CallCountingDelayMs=0</c>: the runtime only starts counting calls towards tier-1
/// code after 100 ms without new tier-0 methods, and a booting guest keeps reaching instruction
/// forms the emulator has not run yet, so its hot handlers stayed in unoptimised code for most of
/// a boot (about 12% of the vCPU thread's CPU; docs/emulator.md). The runtime reads it only from
/// the environment, hence here.
/// </summary>
public static class VmmRuntimeEnvironment
{
    public static IReadOnlyList<KeyValuePair<string, string>> Defaults { get; } =
    [
        new("DOTNET_TC_CallCountingDelayMs", "0"),
    ];

    /// <summary>Adds each default not already present to <paramref name="environment"/>.</summary>
    public static void ApplyTo(IDictionary<string, string?> environment)
    {
        foreach ((string name, string value) in Defaults)
        {
            if (!environment.ContainsKey(name))
            {
                environment[name] = value;
            }
        }
    }
}
