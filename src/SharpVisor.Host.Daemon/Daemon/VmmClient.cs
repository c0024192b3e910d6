using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization.Metadata;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// The daemon's client for one VMM's API socket: Firecracker requests to configure and
/// start the machine, and the SharpVisor extensions for power, status and counters.
/// A refusal becomes a <see cref="VmmRequestException"/> with the VMM's fault message.
/// </summary>
public sealed class VmmClient : IDisposable
{
    private readonly HttpClient _http;

    public VmmClient(string apiSocket, TimeSpan? timeout = null)
    {
        ApiSocket = apiSocket;
        // Unpooled: every request connects, so a VMM socket that went away is noticed at once.
        _http = UnixSocketHttp.CreateClient(apiSocket, timeout ?? TimeSpan.FromSeconds(15), pooled: false);
    }

    public string ApiSocket { get; }

    /// <summary>Waits until the VMM answers GET / (it has started listening), or throws after <paramref name="timeout"/>.</summary>
    public async Task WaitUntilReadyAsync(TimeSpan timeout, Task exited, CancellationToken cancel)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (exited.IsCompleted)
            {
                throw new VmmRequestException(0, "the VMM process exited during startup");
            }

            try
            {
                using HttpResponseMessage response = await _http.GetAsync("/", cancel);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new VmmRequestException(0, $"the VMM did not answer on {ApiSocket} within {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(50, cancel);
        }
    }

    /// <summary>Sends a whole configuration the Firecracker way: one PUT per section, then InstanceStart.</summary>
    public async Task ConfigureAndStartAsync(FullVmConfiguration config, CancellationToken cancel)
    {
        FirecrackerJsonContext json = FirecrackerJsonContext.Default;
        if (config.MachineConfig is { } machine)
        {
            await PutAsync("/machine-config", machine, json.MachineConfig, cancel);
        }

        if (config.BootSource is { } boot)
        {
            await PutAsync("/boot-source", boot, json.BootSource, cancel);
        }

        foreach (Drive drive in config.Drives ?? [])
        {
            await PutAsync($"/drives/{Uri.EscapeDataString(drive.DriveId)}", drive, json.Drive, cancel);
        }

        foreach (NetworkInterface nic in config.NetworkInterfaces ?? [])
        {
            await PutAsync($"/network-interfaces/{Uri.EscapeDataString(nic.IfaceId)}", nic, json.NetworkInterface, cancel);
        }

        if (config.Balloon is { } balloon)
        {
            await PutAsync("/balloon", balloon, json.Balloon, cancel);
        }

        if (config.Protection is { } protection)
        {
            await PutAsync(VmmPaths.Protection, protection, ControlJsonContext.Default.ProtectionConfiguration, cancel);
        }

        await PutAsync("/actions", new InstanceActionInfo { ActionType = InstanceActionInfo.InstanceStart }, json.InstanceActionInfo, cancel);
    }

    public Task CreateSnapshotAsync(string statePath, string memoryPath, bool diff, CancellationToken cancel) =>
        PutAsync("/snapshot/create", new SnapshotCreateParameters { SnapshotPath = statePath, MemFilePath = memoryPath, SnapshotType = diff ? SnapshotCreateParameters.Diff : SnapshotCreateParameters.Full }, FirecrackerJsonContext.Default.SnapshotCreateParameters, cancel);

    public Task LoadSnapshotAsync(string statePath, string memoryPath, CancellationToken cancel) =>
        PutAsync("/snapshot/load", new SnapshotLoadParameters { SnapshotPath = statePath, MemBackend = new MemoryBackend { BackendType = "File", BackendPath = memoryPath }, ResumeVm = true }, FirecrackerJsonContext.Default.SnapshotLoadParameters, cancel);

    public Task ReceiveMigrationAsync(string socketPath, CancellationToken cancel) =>
        PutAsync("/sharpvisor/migration/receive", new Dictionary<string, object> { ["socket"] = socketPath }, Migration.MigrationJsonContext.Default.DictionaryStringObject, cancel);

    public Task PauseAsync(CancellationToken cancel) =>
        SendAsync(HttpMethod.Patch, "/vm", new VmState { State = VmState.Paused }, FirecrackerJsonContext.Default.VmState, cancel);

    public Task ResumeAsync(CancellationToken cancel) =>
        SendAsync(HttpMethod.Patch, "/vm", new VmState { State = VmState.Resumed }, FirecrackerJsonContext.Default.VmState, cancel);

    public Task SendCtrlAltDelAsync(CancellationToken cancel) =>
        PutAsync("/actions", new InstanceActionInfo { ActionType = InstanceActionInfo.SendCtrlAltDel }, FirecrackerJsonContext.Default.InstanceActionInfo, cancel);

    public Task SetBalloonAsync(long amountMib, CancellationToken cancel) =>
        SendAsync(HttpMethod.Patch, "/balloon", new BalloonUpdate { AmountMib = amountMib }, FirecrackerJsonContext.Default.BalloonUpdate, cancel);

    public Task PressPowerButtonAsync(CancellationToken cancel) =>
        PutAsync("/sharpvisor/power", new PowerRequest { Action = PowerRequest.PowerButton }, ControlJsonContext.Default.PowerRequest, cancel);

    public Task PowerOffAsync(string reason, CancellationToken cancel) =>
        PutAsync("/sharpvisor/power", new PowerRequest { Action = PowerRequest.PowerOff, Reason = reason }, ControlJsonContext.Default.PowerRequest, cancel);

    public Task<VmmStatus> GetStatusAsync(CancellationToken cancel) => GetAsync("/sharpvisor/status", ControlJsonContext.Default.VmmStatus, cancel);

    public Task<DomainCounters> GetCountersAsync(CancellationToken cancel) => GetAsync("/sharpvisor/counters", ControlJsonContext.Default.DomainCounters, cancel);

    public Task<XenStoreListing> ReadXenStoreAsync(string path, bool recursive, CancellationToken cancel) =>
        GetAsync($"{VmmPaths.XenStore}?path={Uri.EscapeDataString(path)}&recursive={(recursive ? "true" : "false")}", ControlJsonContext.Default.XenStoreListing, cancel);

    public Task<XenChannelListing> GetXenChannelsAsync(CancellationToken cancel) =>
        GetAsync(VmmPaths.XenChannels, ControlJsonContext.Default.XenChannelListing, cancel);

    public Task WriteXenStoreAsync(string path, string value, CancellationToken cancel) =>
        PutAsync(VmmPaths.XenStore, new XenStoreNode { Path = path, Value = value }, ControlJsonContext.Default.XenStoreNode, cancel);

    public async Task RemoveXenStoreAsync(string path, CancellationToken cancel)
    {
        string uri = $"{VmmPaths.XenStore}?path={Uri.EscapeDataString(path)}";
        using var request = new HttpRequestMessage(HttpMethod.Delete, uri);
        using HttpResponseMessage response = await SendAsync(request, cancel);
        if (response.StatusCode != HttpStatusCode.NoContent)
        {
            throw await FailureAsync(HttpMethod.Delete, uri, response, cancel);
        }
    }

    public Task<ProtectionStatus> GetProtectionAsync(CancellationToken cancel) =>
        GetAsync(VmmPaths.Protection, ControlJsonContext.Default.ProtectionStatus, cancel);

    public Task SetProtectionAsync(string policy, CancellationToken cancel) =>
        PutAsync(VmmPaths.Protection, new ProtectionConfiguration { Policy = policy }, ControlJsonContext.Default.ProtectionConfiguration, cancel);

    /// <summary>GET /attestation?nonce=HEX: the quote's JSON as the VMM wrote it (its bytes are what is signed).</summary>
    public async Task<string> AttestAsync(string nonce, CancellationToken cancel)
    {
        string path = $"{VmmPaths.Attestation}?nonce={Uri.EscapeDataString(nonce)}";
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        using HttpResponseMessage response = await SendAsync(request, cancel);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw await FailureAsync(HttpMethod.Get, path, response, cancel);
        }

        return await response.Content.ReadAsStringAsync(cancel);
    }

    public void Dispose() => _http.Dispose();

    private Task PutAsync<T>(string path, T body, JsonTypeInfo<T> typeInfo, CancellationToken cancel) =>
        SendAsync(HttpMethod.Put, path, body, typeInfo, cancel);

    private async Task SendAsync<T>(HttpMethod method, string path, T body, JsonTypeInfo<T> typeInfo, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body, typeInfo) };
        using HttpResponseMessage response = await SendAsync(request, cancel);
        if (response.StatusCode != HttpStatusCode.NoContent)
        {
            throw await FailureAsync(method, path, response, cancel);
        }
    }

    private async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> typeInfo, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        using HttpResponseMessage response = await SendAsync(request, cancel);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw await FailureAsync(HttpMethod.Get, path, response, cancel);
        }

        return await response.Content.ReadFromJsonAsync(typeInfo, cancel)
            ?? throw new VmmRequestException((int)response.StatusCode, $"GET {path}: empty answer");
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancel)
    {
        try
        {
            return await _http.SendAsync(request, cancel);
        }
        catch (HttpRequestException e)
        {
            throw new VmmRequestException(0, $"the VMM does not answer on {ApiSocket}: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new VmmRequestException(0, $"the VMM did not answer {request.Method} {request.RequestUri} in time");
        }
    }

    private static async Task<VmmRequestException> FailureAsync(HttpMethod method, string path, HttpResponseMessage response, CancellationToken cancel)
    {
        string body = await response.Content.ReadAsStringAsync(cancel);
        return new VmmRequestException((int)response.StatusCode, ApiResults.ReadFaultMessage(body));
    }
}
