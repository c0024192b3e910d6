using System.Diagnostics;
using SharpVisor.Boot.Acpi;

namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>
/// Hands the tables to ACPICA's iasl (Debian package acpica-tools): each must disassemble and
/// the disassembly must compile again without errors. Skips loudly when iasl is not installed.
/// </summary>
public sealed class IaslTests
{
    private static string? Iasl => IaslFactAttribute.IaslPath;

    [IaslFact]
    public void EveryTableDisassemblesAndRecompilesCleanly()
    {
        var platform = new AcpiPlatform
        {
            VcpuCount = 2,
            PciRoutes = [new AcpiPciRoute(1, 1, 17), new AcpiPciRoute(2, 1, 18)],
            PciMmio64 = (0x80_0000_0000, 0xFF_FFFF_FFFF),
        };
        AcpiTables tables = AcpiTables.Build(platform);
        string directory = Directory.CreateTempSubdirectory("sharpvisor-iasl-").FullName;
        try
        {
            foreach ((string name, byte[] table) in new[] { ("dsdt", tables.Dsdt), ("facp", tables.Fadt), ("apic", tables.Madt), ("xsdt", tables.Xsdt), ("facs", tables.Facs) })
            {
                string binary = Path.Combine(directory, name + ".dat");
                File.WriteAllBytes(binary, table);
                (int exit, string output) = Run(directory, "-d", binary);
                Assert.True(exit == 0, $"iasl -d {name} failed:\n{output}");
                string dsl = Path.Combine(directory, name + ".dsl");
                string text = File.ReadAllText(dsl);
                Assert.DoesNotContain("**** ", text.Replace("**** Unknown ACPI table", string.Empty)); // iasl's error markers

                (exit, output) = Run(directory, "-on", "-p", Path.Combine(directory, name + "-again"), dsl);
                Assert.True(exit == 0, $"iasl could not recompile {name}:\n{output}\n{text}");
                Assert.Contains("0 Errors", output);
                if (name == "dsdt")
                {
                    Assert.Contains("PNP0A03", text);
                    Assert.Contains("_S5_", text);
                    Assert.Contains("WordBusNumber", text);
                    Assert.Contains("QWordMemory", text);
                    Assert.Contains("0x0001FFFF", text);
                    Assert.Equal(tables.Dsdt[36..], File.ReadAllBytes(Path.Combine(directory, name + "-again.aml"))[36..]);
                }
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static (int Exit, string Output) Run(string directory, params string[] arguments)
    {
        var start = new ProcessStartInfo(Iasl!)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
