using System.Net;
using System.Text;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Tests.Fakes;

namespace SharpVisor.Host.Tests;

/// <summary>A real per-domain VMM server (its HTTP server on a Unix socket) over a fake machine.</summary>
public sealed class VmmTestServer : IAsyncDisposable
{
    private readonly IDomainMachineFactory _factory;

    private VmmTestServer(TempDirectory directory, VmmServer server, IDomainMachineFactory factory, VmmServerOptions options)
    {
        Directory = directory;
        Server = server;
        _factory = factory;
        Options = options;
        Client = UnixSocketHttp.CreateClient(options.ApiSocketPath, TimeSpan.FromSeconds(10));
    }

    public TempDirectory Directory { get; }

    public VmmServer Server { get; }

    /// <summary>The fake machines' factory (a server started with real machines has none).</summary>
    public FakeDomainMachineFactory Factory => (FakeDomainMachineFactory)_factory;

    public VmmServerOptions Options { get; }

    public HttpClient Client { get; }

    public string Kernel => Directory.File("vmlinux");

    public static async Task<VmmTestServer> StartAsync(Func<TempDirectory, string?>? configFile = null, FakeDomainMachineFactory? factory = null, Func<TempDirectory, VmmServerOptions, VmmServerOptions>? configure = null, IDomainMachineFactory? machines = null)
    {
        var directory = new TempDirectory();
        directory.CreateFile("vmlinux");
        IDomainMachineFactory chosen = machines ?? factory ?? new FakeDomainMachineFactory();
        var options = new VmmServerOptions
        {
            ApiSocketPath = directory.File("api.sock"),
            StateFilePath = directory.File("vmm.json"),
            ConfigFile = configFile?.Invoke(directory),
            Identity = new VmmIdentity("test-vm", 7, "auto"),
        };
        options = configure?.Invoke(directory, options) ?? options;
        VmmServer server = await VmmServer.StartAsync(options, chosen);
        return new VmmTestServer(directory, server, chosen, options);
    }

    public Task<Response> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null);

    public Task<Response> PutAsync(string path, string? json) => SendAsync(HttpMethod.Put, path, json);

    public Task<Response> PatchAsync(string path, string? json) => SendAsync(HttpMethod.Patch, path, json);

    public async Task<Response> SendAsync(HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using HttpResponseMessage response = await Client.SendAsync(request);
        return new Response(response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Configures a boot source and starts the machine.</summary>
    public async Task StartMachineAsync()
    {
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync("/boot-source", $$"""{"kernel_image_path": "{{Kernel}}", "boot_args": "console=ttyS0"}""")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync("/actions", """{"action_type": "InstanceStart"}""")).Status);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Directory.Dispose();
    }

    public sealed record Response(HttpStatusCode Status, string Body)
    {
        public string FaultMessage => ApiResults.ReadFaultMessage(Body);
    }
}
