namespace SharpVisor.Cli.Jailer;

/// <summary>One flag of the jailer's command line, as Firecracker's arg_parser.rs describes it.</summary>
public sealed record JailerArgument(string Name, bool TakesValue, string Help)
{
    public bool Required { get; init; }

    /// <summary>May be given more than once (--cgroup, --resource-limit); takes a value.</summary>
    public bool AllowMultiple { get; init; }

    public string? DefaultValue { get; init; }

    public string FormattedName => TakesValue ? $"  --{Name} <{Name}>" : $"  --{Name}";
}
