using System.Xml.Linq;

namespace SharpVisor.Host.Tests;

/// <summary>
/// References point downward only, and each project names every layer it uses (transitive
/// project references are off for src/, Directory.Build.props): a reference outside this map —
/// the emulator reaching into the devices, Xen into the host — fails here, in review's place.
/// A new project is added to the map on purpose.
/// </summary>
public sealed class LayeringTests
{
    private static readonly string[] s_platform = ["SharpVisor.Interop", "SharpVisor.Memory", "SharpVisor.Machine"];

    private static readonly string[] s_accelerators = ["SharpVisor.Kvm", "SharpVisor.Emulator"];

    /// <summary>
    /// The one list of which project may reference which (docs/architecture.md, "Layers"). The Host
    /// parts: Configuration (the machine-configuration records) and Api (the wire models, the lean
    /// HTTP server, the console protocol) sit on the platform without an accelerator; Vmm builds
    /// machines on top of them; Daemon and Client never see an accelerator (the daemon starts a VMM
    /// process per domain and must not load KVM or the emulator).
    /// </summary>
    private static readonly Dictionary<string, string[]> s_mayReference = new()
    {
        ["SharpVisor.Interop"] = [],
        ["SharpVisor.Memory"] = ["SharpVisor.Interop"],
        ["SharpVisor.Machine"] = ["SharpVisor.Interop", "SharpVisor.Memory"],
        ["SharpVisor.Emulator"] = s_platform,
        ["SharpVisor.Kvm"] = s_platform,
        ["SharpVisor.Devices"] = s_platform,
        ["SharpVisor.Boot"] = s_platform,
        ["SharpVisor.Xen"] = s_platform,
        ["SharpVisor.Security"] = [.. s_platform, "SharpVisor.Boot"],
        ["SharpVisor.Host.Configuration"] = [.. s_platform, "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Security"],
        ["SharpVisor.Host.Api"] = [.. s_platform, "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Security", "SharpVisor.Host.Configuration"],
        ["SharpVisor.Host.Vmm"] = [.. s_platform, "SharpVisor.Emulator", "SharpVisor.Kvm", "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Xen", "SharpVisor.Security", "SharpVisor.Host.Configuration", "SharpVisor.Host.Api"],
        ["SharpVisor.Host.Daemon"] = [.. s_platform, "SharpVisor.Devices", "SharpVisor.Security", "SharpVisor.Host.Configuration", "SharpVisor.Host.Api"],
        ["SharpVisor.Host.Client"] = ["SharpVisor.Interop", "SharpVisor.Host.Api"],
        ["SharpVisor.Cli"] = [.. s_platform, "SharpVisor.Emulator", "SharpVisor.Kvm", "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Xen", "SharpVisor.Security", "SharpVisor.Host.Configuration", "SharpVisor.Host.Api", "SharpVisor.Host.Vmm", "SharpVisor.Host.Daemon", "SharpVisor.Host.Client"],
        // The NativeAOT front end (out/firecracker) names Host.Vmm's references for ILC; it constructs no machine (FirecrackerFrontEndTests).
        ["SharpVisor.Firecracker"] = [.. s_platform, "SharpVisor.Emulator", "SharpVisor.Kvm", "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Xen", "SharpVisor.Security", "SharpVisor.Host.Configuration", "SharpVisor.Host.Api", "SharpVisor.Host.Vmm"],
        ["SharpVisor"] = [.. s_platform, "SharpVisor.Emulator", "SharpVisor.Kvm", "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Xen", "SharpVisor.Security", "SharpVisor.Host.Configuration", "SharpVisor.Host.Api", "SharpVisor.Host.Vmm"],
    };

    [Fact]
    public void EveryProjectReferencesOnlyTheLayersBelowIt()
    {
        string src = Path.Combine(RepositoryPaths.Root, "src");
        var violations = new List<string>();
        string[] projects = Directory.GetFiles(src, "*.csproj", SearchOption.AllDirectories);
        Assert.NotEmpty(projects);
        foreach (string project in projects)
        {
            string name = Path.GetFileNameWithoutExtension(project);
            if (!s_mayReference.TryGetValue(name, out string[]? allowed))
            {
                violations.Add($"{name} is not in the layer map of LayeringTests: place it there");
                continue;
            }

            foreach (string reference in ProjectReferences(project))
            {
                if (!allowed.Contains(reference))
                {
                    violations.Add($"{name} references {reference}, which is not below it");
                }
            }
        }

        Assert.Empty(violations);
    }

    /// <summary>
    /// The daemon and the client run in processes that must not load an accelerator: not even
    /// through a part they use (the build copies every assembly the references reach).
    /// </summary>
    [Theory]
    [InlineData("SharpVisor.Host.Daemon")]
    [InlineData("SharpVisor.Host.Client")]
    [InlineData("SharpVisor.Host.Api")]
    public void NoPathFromTheControlPlaneReachesAnAccelerator(string project)
    {
        string src = Path.Combine(RepositoryPaths.Root, "src");
        Dictionary<string, string[]> graph = Directory.GetFiles(src, "*.csproj", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetFileNameWithoutExtension(p), p => ProjectReferences(p).ToArray());
        var reached = new HashSet<string>();
        var pending = new Stack<string>([project]);
        while (pending.TryPop(out string? next))
        {
            foreach (string reference in graph[next])
            {
                if (reached.Add(reference))
                {
                    pending.Push(reference);
                }
            }
        }

        Assert.Empty(reached.Intersect(s_accelerators));
        Assert.DoesNotContain("SharpVisor.Host.Vmm", reached);
    }

    [Fact]
    public void TransitiveProjectReferencesAreOffForTheLayers()
    {
        XDocument props = XDocument.Load(Path.Combine(RepositoryPaths.Root, "Directory.Build.props"));
        XElement setting = Assert.Single(props.Descendants("DisableTransitiveProjectReferences"));
        Assert.Equal("true", setting.Value);
        Assert.Contains("/src/", (string?)setting.Attribute("Condition"));
    }

    private static IEnumerable<string> ProjectReferences(string project) =>
        XDocument.Load(project).Descendants("ProjectReference")
            .Select(r => Path.GetFileNameWithoutExtension(((string)r.Attribute("Include")!).Replace('\\', '/')));
}
