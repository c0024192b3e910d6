namespace SharpVisor.Host.Firecracker;

/// <summary>One flag of Firecracker's (or its jailer's) command line, as its arg_parser.rs describes it.</summary>
public sealed record FirecrackerArgument(string Name, bool TakesValue, string Help)
{
    public string? DefaultValue { get; init; }

    /// <summary>Must be given (the jailer's --id, --exec-file, --uid, --gid).</summary>
    public bool Required { get; init; }

    /// <summary>May be given more than once (the jailer's --cgroup, --resource-limit); takes a value.</summary>
    public bool AllowMultiple { get; init; }

    /// <summary>A flag that must come with this one (--no-api needs --config-file).</summary>
    public string? Requires { get; init; }

    /// <summary>Flags that must not come with this one.</summary>
    public IReadOnlyList<string> Forbids { get; init; } = [];

    /// <summary>The flag as Firecracker's help shows it: "  --name &lt;name&gt;" or "  --name".</summary>
    public string FormattedName => TakesValue ? $"  --{Name} <{Name}>" : $"  --{Name}";
}
