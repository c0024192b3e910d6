namespace SharpVisor.Host.Vmm;

/// <summary>The command line's names of <see cref="XenMode"/>s (`--xen pvh|hvm`).</summary>
public static class XenModes
{
    /// <summary>"pvh" or "hvm"; null is a plain PC. Anything else is refused in one line.</summary>
    public static XenMode Parse(string? name) => name switch
    {
        null => XenMode.None,
        "pvh" => XenMode.Pvh,
        "hvm" => XenMode.Hvm,
        _ => throw new ArgumentException($"--xen {name}: the Xen domain types are pvh and hvm"),
    };
}
