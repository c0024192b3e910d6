using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Host.Migration;

/// <summary>
/// The destination daemon's migration listener (<c>sharpvisor daemon --migrate-listen
/// [ADDR:]PORT</c>, docs/migration.md). For each connection it reads the hello and the
/// configuration, refuses at once what cannot run here (a disk or kernel path this host does not
/// have, a name already taken), creates the domain with a VMM that receives the machine on a Unix
/// socket, and relays the TCP stream into it. A domain whose machine did not arrive is destroyed.
/// Plain TCP without authentication: for a trusted network only.
/// </summary>
public sealed class MigrationListener : IDisposable
{
    private readonly DomainRegistry _registry;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();

    private MigrationListener(DomainRegistry registry, TcpListener listener)
    {
        _registry = registry;
        _listener = listener;
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Listens on <paramref name="listen"/>: <c>PORT</c> (every address) or <c>ADDR:PORT</c>.</summary>
    public static MigrationListener Start(DomainRegistry registry, string listen)
    {
        IPEndPoint endpoint = int.TryParse(listen, NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            ? new IPEndPoint(IPAddress.Any, port)
            : IPEndPoint.TryParse(listen, out IPEndPoint? parsed) && listen.Contains(':', StringComparison.Ordinal)
                ? parsed
                : throw new ArgumentException($"'{listen}' is not PORT or ADDR:PORT");
        var listener = new TcpListener(endpoint);
        listener.Start();
        var result = new MigrationListener(registry, listener);
        _ = result.AcceptLoopAsync();
        return result;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ReceiveAsync(client));
        }
    }

    private async Task ReceiveAsync(TcpClient client)
    {
        using (client)
        {
            client.NoDelay = true;
            NetworkStream network = client.GetStream();
            var channel = new MigrationChannel(network);
            string from = client.Client.RemoteEndPoint?.ToString() ?? "?";
            Domain? domain = null;
            try
            {
                byte[] hello = channel.Expect(MigrationFrameType.Hello);
                byte[] config = channel.Expect(MigrationFrameType.Config);
                string name = ReadName(hello);
                Vmm.MachineConfiguration machine = MigrationProtocol.ReadConfiguration(config, out _);
                if (MigrationProtocol.MissingFile(machine) is { } missing)
                {
                    throw new MigrationException(missing);
                }

                FullVmConfiguration full;
                string accelerator;
                try
                {
                    full = SnapshotConfigurationView.FromMachine(machine, out accelerator);
                }
                catch (SnapshotException e)
                {
                    throw new MigrationException(e.Message, e);
                }

                string socket = Path.Combine(_registry.Environment.Runtime.Root, $"migrate-{Guid.NewGuid().ToString("N")[..12]}.sock");
                try
                {
                    domain = await _registry.ReceiveMigrationAsync(new CreateDomainRequest { Name = name.Length == 0 ? null : name, Accelerator = accelerator, Config = full }, socket);
                }
                catch (ApiException e)
                {
                    throw new MigrationException(e.Message, e);
                }

                _registry.Environment.Log($"incoming migration from {from}: domain {domain.Name} (id {domain.Id})");
                using var vmm = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await vmm.ConnectAsync(new UnixDomainSocketEndPoint(socket));
                using var local = new NetworkStream(vmm, ownsSocket: false);
                var forward = new MigrationChannel(local);
                forward.Send(MigrationFrameType.Hello, hello);
                forward.Send(MigrationFrameType.Config, config);
                forward.Flush();
                await RelayAsync(network, local, client.Client, vmm);
            }
            catch (MigrationException e)
            {
                _registry.Environment.Log($"incoming migration from {from} refused: {e.Message}");
                TryRefuse(channel, e.Message);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                _registry.Environment.Log($"incoming migration from {from} failed: {e.Message}");
            }

            if (domain is not null)
            {
                await SettleAsync(domain);
            }
        }
    }

    /// <summary>
    /// Copies both ways. The source closing passes on as an end of stream to the VMM, which is
    /// then waited for (it closes its side once the machine runs or the migration failed); the
    /// VMM closing ends the source's connection.
    /// </summary>
    private static async Task RelayAsync(Stream network, Stream local, Socket networkSocket, Socket localSocket)
    {
        Task toVmm = network.CopyToAsync(local);
        Task toSource = local.CopyToAsync(network);
        try
        {
            if (await Task.WhenAny(toVmm, toSource) == toVmm)
            {
                Shutdown(localSocket, SocketShutdown.Send);
                await toSource.WaitAsync(TimeSpan.FromMinutes(2));
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or TimeoutException)
        {
            // One side went away: what the VMM did is read from its status afterwards.
        }

        Shutdown(networkSocket, SocketShutdown.Both);
        Shutdown(localSocket, SocketShutdown.Both);
        try
        {
            await Task.WhenAll(toVmm, toSource).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or TimeoutException)
        {
            // As above.
        }
    }

    private static void Shutdown(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (SocketException)
        {
            // Not connected any more: nothing left to end.
        }
    }

    /// <summary>A domain whose VMM does not run the machine now did not get it: it goes.</summary>
    private async Task SettleAsync(Domain domain)
    {
        using var client = new VmmClient(domain.Paths.ApiSocket, TimeSpan.FromSeconds(5));
        VmmState state;
        try
        {
            state = (await client.GetStatusAsync(CancellationToken.None)).State;
        }
        catch (Exception e) when (e is VmmRequestException or IOException or SocketException)
        {
            state = VmmState.Stopped;
        }

        if (state != VmmState.Running)
        {
            _registry.Environment.Log($"domain {domain.Name}: the migration did not complete; destroying it");
            try
            {
                await _registry.DestroyAsync(domain);
            }
            catch (Exception e) when (e is ApiException or IOException)
            {
                _registry.Environment.Log($"domain {domain.Name}: {e.Message}");
            }
        }
        else
        {
            _registry.Environment.Log($"domain {domain.Name} (id {domain.Id}) migrated in and running");
        }
    }

    private static string ReadName(byte[] hello)
    {
        try
        {
            var reader = new SnapshotReader("hello", hello);
            if (reader.ReadString() != MigrationProtocol.Magic)
            {
                throw new MigrationException("not a SharpVisor migration");
            }

            uint version = reader.ReadUInt32();
            if (version != MigrationProtocol.Version)
            {
                throw new MigrationException($"migration protocol version {version} is not supported (this build speaks version {MigrationProtocol.Version})");
            }

            reader.ReadString();
            reader.ReadUInt64();
            return reader.ReadString();
        }
        catch (SnapshotException e)
        {
            throw new MigrationException($"the hello is invalid: {e.Message}", e);
        }
    }

    private static void TryRefuse(MigrationChannel channel, string reason)
    {
        try
        {
            channel.Send(MigrationFrameType.Refuse, reason);
            channel.Flush();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The source is gone; the reason is in this daemon's log.
        }
    }
}
