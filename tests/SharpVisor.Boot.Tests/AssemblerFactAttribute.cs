namespace SharpVisor.Boot.Tests;

/// <summary>A test that builds tests/kernels with GNU as and ld; skipped loudly when binutils is missing.</summary>
public sealed class AssemblerFactAttribute : FactAttribute
{
    public AssemblerFactAttribute()
    {
        string[] missing = new[] { "as", "ld" }.Where(tool => !OnPath(tool)).ToArray();
        if (missing.Length > 0)
        {
            Skip = $"SKIPPED — NEEDS BINUTILS: {string.Join(" and ", missing)} not found on PATH (apt-get install binutils)";
        }
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));
}
