namespace SharpVisor.Boot;

/// <summary>A module as loaded: [Start, End) in guest memory and the string the kernel sees.</summary>
internal readonly record struct MultibootModule(ulong Start, ulong End, string Text);
