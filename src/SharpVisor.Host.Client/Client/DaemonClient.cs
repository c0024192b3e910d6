using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json.Serialization.Metadata;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Client;

/// <summary>
/// The CLI's client for sharpvisord's API on its Unix socket. Every refusal becomes a
/// <see cref="DaemonException"/> carrying the daemon's one-line message.
/// </summary>
public sealed partial class DaemonClient : IDisposable
{
    private readonly HttpClient _http;

    public DaemonClient(string socketPath, TimeSpan? timeout = null)
    {
        SocketPath = socketPath;
        _http = UnixSocketHttp.CreateClient(socketPath, timeout ?? TimeSpan.FromMinutes(5));
    }

    public string SocketPath { get; }

    public Task<List<DomainInfo>> ListAsync(CancellationToken cancel = default) =>
        GetAsync("/domains", DaemonJsonContext.Default.ListDomainInfo, cancel);

    public Task<DomainInfo> GetAsync(string domain, CancellationToken cancel = default) =>
        GetAsync(DomainPath(domain), DaemonJsonContext.Default.DomainInfo, cancel);

    public Task<DomainInfo> CreateAsync(CreateDomainRequest request, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Post, "/domains", request, DaemonJsonContext.Default.CreateDomainRequest, DaemonJsonContext.Default.DomainInfo, cancel);

    public Task<DomainInfo> PauseAsync(string domain, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Post, DomainPath(domain) + "/pause", null, DaemonJsonContext.Default.DomainInfo, cancel);

    public Task<DomainInfo> UnpauseAsync(string domain, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Post, DomainPath(domain) + "/unpause", null, DaemonJsonContext.Default.DomainInfo, cancel);

    public Task<ShutdownResult> ShutdownAsync(string domain, int timeoutSeconds, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Post, DomainPath(domain) + "/shutdown", new ShutdownRequest { TimeoutS = timeoutSeconds }, DaemonJsonContext.Default.ShutdownRequest, DaemonJsonContext.Default.ShutdownResult, cancel);

    public Task<ShutdownResult> RebootAsync(string domain, int timeoutSeconds, bool force = false, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Post, DomainPath(domain) + "/reboot", new RebootRequest { TimeoutS = timeoutSeconds, Force = force }, DaemonJsonContext.Default.RebootRequest, DaemonJsonContext.Default.ShutdownResult, cancel);

    /// <summary>save: writes FILE and FILE.mem; the domain is destroyed unless <paramref name="keep"/>.</summary>
    public async Task SaveAsync(string domain, string path, bool keep, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, DomainPath(domain) + "/save")
        {
            Content = JsonContent.Create(new SnapshotRequest { Path = path, Keep = keep }, DaemonJsonContext.Default.SnapshotRequest),
        };
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
    }

    public Task<DomainInfo> SnapshotAsync(string domain, string path, bool diff, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Post, DomainPath(domain) + "/snapshot", new SnapshotRequest { Path = path, Diff = diff }, DaemonJsonContext.Default.SnapshotRequest, DaemonJsonContext.Default.DomainInfo, cancel);

    public Task<DomainInfo> RestoreAsync(string path, string? name, CancellationToken cancel = default, string? basePath = null) =>
        SendAsync(HttpMethod.Post, "/domains/restore", new RestoreDomainRequest { Path = path, Name = name, Base = basePath }, DaemonJsonContext.Default.RestoreDomainRequest, DaemonJsonContext.Default.DomainInfo, cancel);

    public async Task DestroyAsync(string domain, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, DomainPath(domain));
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
    }

    public Task<DomainInfo> SetMemoryAsync(string domain, long targetMib, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Put, DomainPath(domain) + "/memory", new MemoryRequest { TargetMib = targetMib }, DaemonJsonContext.Default.MemoryRequest, DaemonJsonContext.Default.DomainInfo, cancel);

    public Task<XenStoreListing> ReadXenStoreAsync(string domain, string path, bool recursive, CancellationToken cancel = default) =>
        GetAsync($"{DomainPath(domain)}/xenstore?path={Uri.EscapeDataString(path)}&recursive={(recursive ? "true" : "false")}", ControlJsonContext.Default.XenStoreListing, cancel);

    public Task<XenChannelListing> ReadXenChannelsAsync(string domain, CancellationToken cancel = default) =>
        GetAsync($"{DomainPath(domain)}/xen-channels", ControlJsonContext.Default.XenChannelListing, cancel);

    public async Task WriteXenStoreAsync(string domain, string path, string value, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, DomainPath(domain) + "/xenstore")
        {
            Content = JsonContent.Create(new XenStoreNode { Path = path, Value = value }, ControlJsonContext.Default.XenStoreNode),
        };
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
    }

    public async Task RemoveXenStoreAsync(string domain, string path, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"{DomainPath(domain)}/xenstore?path={Uri.EscapeDataString(path)}");
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
    }

    public async Task PinVcpuAsync(string domain, string vcpu, string cpus, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, DomainPath(domain) + "/vcpu-pin")
        {
            Content = JsonContent.Create(new VcpuPinRequest { Vcpu = vcpu, Cpus = cpus }, DaemonJsonContext.Default.VcpuPinRequest),
        };
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
    }

    public Task<DomainSchedule> GetScheduleAsync(string domain, CancellationToken cancel = default) =>
        GetAsync(DomainPath(domain) + "/sched", DaemonJsonContext.Default.DomainSchedule, cancel);

    public Task<DomainSchedule> SetScheduleAsync(string domain, ScheduleRequest schedule, CancellationToken cancel = default) =>
        SendAsync(HttpMethod.Put, DomainPath(domain) + "/sched", schedule, DaemonJsonContext.Default.ScheduleRequest, DaemonJsonContext.Default.DomainSchedule, cancel);

    public Task<List<DomainStats>> StatsAsync(CancellationToken cancel = default) =>
        GetAsync("/stats", DaemonJsonContext.Default.ListDomainStats, cancel);

    public async Task<string> MetricsAsync(CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
        return await response.Content.ReadAsStringAsync(cancel);
    }

    /// <summary>The console's recent output (the daemon's ring buffer), without attaching.</summary>
    public async Task<byte[]> ConsoleHistoryAsync(string domain, CancellationToken cancel = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, DomainPath(domain) + "/console");
        using HttpResponseMessage response = await SendAsync(request, cancel);
        await EnsureSuccessAsync(response, cancel);
        return await response.Content.ReadAsByteArrayAsync(cancel);
    }

    /// <summary>Attaches to a domain's console: a WebSocket carrying output (history first) and input as binary messages.</summary>
    public async Task<WebSocket> AttachConsoleAsync(string domain, CancellationToken cancel = default)
    {
        // Ask first, so a missing domain is a clear 404 message rather than a failed upgrade.
        await GetAsync(domain, cancel);
        var socket = new ClientWebSocket();
        try
        {
            using var invoker = new HttpMessageInvoker(UnixSocketHttp.CreateHandler(SocketPath));
            await socket.ConnectAsync(new Uri("ws://localhost" + DomainPath(domain) + "/console"), invoker, cancel);
            return socket;
        }
        catch (WebSocketException e)
        {
            socket.Dispose();
            throw new DaemonException(0, $"cannot attach to the console of '{domain}': {e.Message}");
        }
    }

    public void Dispose() => _http.Dispose();

    private static string DomainPath(string domain) => "/domains/" + Uri.EscapeDataString(domain);

    private async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> typeInfo, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        using HttpResponseMessage response = await SendAsync(request, cancel);
        return await ReadAsync(response, typeInfo, cancel);
    }

    private Task<TResult> SendAsync<TResult>(HttpMethod method, string path, object? _, JsonTypeInfo<TResult> resultType, CancellationToken cancel) =>
        SendRequestAsync(new HttpRequestMessage(method, path), resultType, cancel);

    private Task<TResult> SendAsync<TBody, TResult>(HttpMethod method, string path, TBody body, JsonTypeInfo<TBody> bodyType, JsonTypeInfo<TResult> resultType, CancellationToken cancel) =>
        SendRequestAsync(new HttpRequestMessage(method, path) { Content = JsonContent.Create(body, bodyType) }, resultType, cancel);

    private async Task<TResult> SendRequestAsync<TResult>(HttpRequestMessage request, JsonTypeInfo<TResult> resultType, CancellationToken cancel)
    {
        using (request)
        {
            using HttpResponseMessage response = await SendAsync(request, cancel);
            return await ReadAsync(response, resultType, cancel);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancel)
    {
        try
        {
            return await _http.SendAsync(request, cancel);
        }
        catch (HttpRequestException e)
        {
            throw new DaemonException(0, $"sharpvisord does not answer on {SocketPath}: {e.Message}");
        }
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> typeInfo, CancellationToken cancel)
    {
        await EnsureSuccessAsync(response, cancel);
        return await response.Content.ReadFromJsonAsync(typeInfo, cancel)
            ?? throw new DaemonException((int)response.StatusCode, "the daemon sent an empty answer");
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancel)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string body = await response.Content.ReadAsStringAsync(cancel);
        throw new DaemonException((int)response.StatusCode, ApiResults.ReadFaultMessage(body));
    }
}
