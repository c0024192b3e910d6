namespace SharpVisor.Boot;

/// <summary>A Multiboot module: a file loaded next to the kernel, with its own string.</summary>
/// <param name="Path">The file to load.</param>
/// <param name="CommandLine">The module string the kernel sees; the file name when null.</param>
public sealed record BootModule(string Path, string? CommandLine = null);
