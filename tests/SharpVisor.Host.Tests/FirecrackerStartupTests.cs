using System.Diagnostics;
using System.Net;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Tests;

/// <summary>
/// A VMM started as Firecracker loads only what its API needs before InstanceStart: no
/// accelerator, emulator, devices or boot code, no ASP.NET Core, no System.CommandLine
/// (StartupTrace lists the assemblies loaded when the first answer has been given).
/// </summary>
public sealed class FirecrackerStartupTests
{
    [Fact]
    public async Task NothingTheApiDoesNotNeedIsLoadedBeforeInstanceStart()
    {
        using var directory = new TempDirectory();
        string socket = directory.File("api.sock");
        var start = new ProcessStartInfo(SharpVisorCommand.Dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { SharpVisorCommand.AssemblyPath, "firecracker", "--api-sock", socket, "--id", "fc-startup" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment[StartupTrace.Variable] = "1";
        using Process vmm = Process.Start(start)!;
        try
        {
            _ = vmm.StandardOutput.ReadToEndAsync();
            using HttpClient client = UnixSocketHttp.CreateClient(socket, TimeSpan.FromSeconds(10));
            await Eventually.TrueAsync(
                async () =>
                {
                    try
                    {
                        return (await client.GetAsync("/")).StatusCode == HttpStatusCode.OK;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(60),
                "the VMM's API answers GET /");

            var loaded = new List<string>();
            bool answered = false;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (await vmm.StandardError.ReadLineAsync(timeout.Token) is { } line && line != StartupTrace.EndLine)
            {
                answered |= line.StartsWith(StartupTrace.ReadyPrefix, StringComparison.Ordinal);
                if (line.StartsWith(StartupTrace.AssemblyPrefix, StringComparison.Ordinal))
                {
                    loaded.Add(line[StartupTrace.AssemblyPrefix.Length..]);
                }
            }

            Assert.True(answered, "the trace has no first-answer line");
            Assert.Contains("SharpVisor.Host.Vmm", loaded);
            Assert.Contains("SharpVisor.Host.Api", loaded);
            foreach (string unwanted in new[] { "SharpVisor.Host.Daemon", "SharpVisor.Host.Client", "SharpVisor.Emulator", "SharpVisor.Kvm", "SharpVisor.Devices", "SharpVisor.Boot", "SharpVisor.Xen", "Iced", "System.CommandLine" })
            {
                Assert.DoesNotContain(unwanted, loaded);
            }

            Assert.DoesNotContain(loaded, name => name.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || name.StartsWith("Microsoft.Extensions", StringComparison.Ordinal));
        }
        finally
        {
            vmm.Kill(entireProcessTree: true);
            await vmm.WaitForExitAsync();
        }
    }
}
