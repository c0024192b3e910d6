namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>A test that needs ACPICA's iasl (Debian package acpica-tools); skipped loudly without it.</summary>
public sealed class IaslFactAttribute : FactAttribute
{
    public static readonly string? IaslPath = new[] { "/usr/bin/iasl", "/usr/local/bin/iasl" }.FirstOrDefault(File.Exists);

    public IaslFactAttribute()
    {
        if (IaslPath is null)
        {
            Skip = "SKIPPED — NEEDS iasl: install Debian's acpica-tools to check the ACPI tables with ACPICA";
        }
    }
}
