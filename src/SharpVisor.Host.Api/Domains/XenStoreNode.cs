namespace SharpVisor.Host.Domains;

/// <summary>One XenStore node as the toolstack API carries it: its absolute path and its value.</summary>
public sealed record XenStoreNode
{
    public required string Path { get; init; }

    public required string Value { get; init; }
}
