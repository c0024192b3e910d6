namespace SharpVisor.Host.Vmm;

/// <summary>The command line's names of <see cref="XenMode"/>s (`--xen pvh|hvm|pv`).</summary>
public static class XenModes
{
    /// <summary>"pvh", "hvm" or "pv"; null is a plain PC. Anything else is refused in one line.</summary>
    public static XenMode Parse(string? name) => name switch
    {
        null => XenMode.None,
        "pvh" => XenMode.Pvh,
        "hvm" => XenMode.Hvm,
        "pv" => XenMode.Pv,
        _ => throw new ArgumentException($"--xen {name}: the Xen domain types are pvh, hvm and pv"),
    };
}
