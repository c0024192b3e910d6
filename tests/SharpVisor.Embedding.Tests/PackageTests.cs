using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using SharpVisor.TestSupport;

namespace SharpVisor.Embedding.Tests;

/// <summary>
/// The SharpVisor package an application references: the API with its XML docs, the VMM's
/// assemblies inside it (not as packages that do not exist), and only real dependencies.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private readonly string _output = Path.Combine(Path.GetTempPath(), $"sv-pack-{Guid.NewGuid():N}");

    public void Dispose() => Directory.Delete(_output, recursive: true);

    [Fact]
    public async Task ThePackageCarriesTheApiItsDocsAndTheVmmAndDependsOnlyOnWhatExists()
    {
        string project = Path.Combine(RepositoryPaths.Root, "src", "SharpVisor", "SharpVisor.csproj");
        var start = new ProcessStartInfo("dotnet", ["pack", project, "-c", "Release", "--no-build", "-nologo", "-v", "quiet", "-o", _output])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using (Process pack = Process.Start(start)!)
        {
            Task<string> stdout = pack.StandardOutput.ReadToEndAsync();
            Task<string> stderr = pack.StandardError.ReadToEndAsync();
            await pack.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            Assert.True(pack.ExitCode == 0, $"dotnet pack failed: {await stdout}{await stderr}");
        }

        using ZipArchive package = ZipFile.OpenRead(Assert.Single(Directory.GetFiles(_output, "SharpVisor.*.nupkg")));
        string[] entries = package.Entries.Select(e => e.FullName).ToArray();
        foreach (string file in new[] { "SharpVisor.dll", "SharpVisor.xml", "SharpVisor.Host.Configuration.dll", "SharpVisor.Host.Api.dll", "SharpVisor.Host.Vmm.dll", "SharpVisor.Emulator.dll", "SharpVisor.Kvm.dll" })
        {
            Assert.Contains($"lib/net10.0/{file}", entries);
        }

        using Stream nuspecStream = package.GetEntry("SharpVisor.nuspec")!.Open();
        XDocument nuspec = XDocument.Load(nuspecStream);
        string[] dependencies = nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).ToArray();
        Assert.Equal(["Iced"], dependencies);
        Assert.Contains(nuspec.Descendants().Where(e => e.Name.LocalName == "frameworkReference"), e => (string?)e.Attribute("name") == "Microsoft.AspNetCore.App");
    }
}
