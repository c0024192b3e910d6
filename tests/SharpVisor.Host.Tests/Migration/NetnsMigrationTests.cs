using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Migration;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Migration;

/// <summary>
/// Issue 15's whole migration test, one boot of the default guest on the emulator: two
/// `sharpvisor daemon` processes, each in its own network namespace (the source in A, the
/// destination with --migrate-listen in B), a client in a third (C). Each of A and B has a bridge
/// holding a TAP of the same name (the NIC's) and a veth to C's bridge, where the client has its
/// address: one L2 network, and the migration's TCP runs over it too. The guest counts once a
/// second, writes each count to its own disk sector with fsync (the image on a path both daemons
/// see) and echoes the lines of a TCP connection the client opened before the migration. After
/// the move the counter goes on at the destination without a reboot, the same TCP connection still
/// echoes (the destination VMM's RARP moved the MAC in C's bridge), and every sector holds its count.
/// </summary>
public sealed partial class NetnsMigrationTests
{
    private const string GuestMac = "06:00:0a:4d:00:02";
    private const string GuestAddress = "10.77.0.2";
    private const string ClientAddress = "10.77.0.1";
    private const string TapName = "svmig0";
    private const int EchoPort = 7000;

    private static readonly string s_hook = $$"""
        ip addr add {{GuestAddress}}/24 dev eth0
        ip link set eth0 up
        nc -ll -p {{EchoPort}} -e /echo.sh &
        echo TCP-READY
        i=0
        while [ $i -lt 900 ]; do
            i=$((i+1))
            printf 'DISK %08d' $i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,fsync 2>/dev/null
            echo "COUNT $i"
            sleep 1
        done
        """;

    private const string Echo = """
        #!/bin/sh
        while read -r line; do echo "ECHO $line"; done
        """;

    private static readonly TimeSpan s_boot = TimeSpan.FromMinutes(10);

    [GeneratedRegex(@"^COUNT (\d+)\r?$", RegexOptions.Multiline)]
    private static partial Regex CountPattern();

    [DefaultGuestFact(NeedsNetwork = true)]
    public async Task TheGuestMovesBetweenNamespacesWithItsCounterItsDiskAndItsTcpConnection()
    {
        using var directory = new TempDirectory();
        using NetworkNamespace a = NetworkNamespace.Create();
        using NetworkNamespace b = NetworkNamespace.Create();
        using NetworkNamespace c = NetworkNamespace.Create();
        c.Ip("link", "set", "lo", "up");
        c.Ip("link", "add", "br0", "type", "bridge");
        c.Ip("addr", "add", $"{ClientAddress}/24", "dev", "br0");
        c.Ip("link", "set", "br0", "up");
        Wire(a, "10.77.0.10", "upa", c);
        Wire(b, "10.77.0.11", "upb", c);

        string initrd = directory.File("initrd.img");
        using (FileStream combined = File.Create(initrd))
        {
            using (FileStream guest = File.OpenRead(GuestBootCapability.Initrd))
            {
                guest.CopyTo(combined);
            }

            // A compressed member may follow the initrd at any offset (an uncompressed one only 4-byte aligned).
            using var compressed = new System.IO.Compression.GZipStream(combined, System.IO.Compression.CompressionLevel.Fastest);
            compressed.Write(new CpioArchive().AddFile("hook.sh", s_hook).AddFile("echo.sh", Echo).ToArray());
        }

        string disk = directory.File("shared.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        using var source = DaemonProcess.Start(a, directory.File("run-a"));
        using var destination = DaemonProcess.Start(b, directory.File("run-b"), "--migrate-listen", "10.77.0.11:9555");
        await source.WaitReadyAsync();
        await destination.WaitReadyAsync();

        EchoClient? client = null;
        try
        {
            await source.Client.CreateAsync(new CreateDomainRequest
            {
                Name = "web",
                Accelerator = "emulator",
                Config = new FullVmConfiguration
                {
                    BootSource = new BootSource { KernelImagePath = GuestBootCapability.Kernel, InitrdPath = initrd, BootArgs = "console=ttyS0 reboot=k panic=-1 no_timer_check" },
                    MachineConfig = new MachineConfig { VcpuCount = 1, MemSizeMib = 256 },
                    Drives = [new Drive { DriveId = "data", PathOnHost = disk, IsRootDevice = false, IsReadOnly = false }],
                    NetworkInterfaces = [new NetworkInterface { IfaceId = "eth0", HostDevName = TapName, GuestMac = GuestMac }],
                },
            });
            try
            {
                await Eventually.TrueAsync(async () => (await Counts(source.Client)).LastOrDefault() >= 2 && (await History(source.Client)).Contains("TCP-READY", StringComparison.Ordinal), s_boot, "the guest counts and its echo server listens");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                string console = await History(source.Client);
                throw new InvalidOperationException($"{e.Message}\n{(console.Length > 3000 ? console[^3000..] : console)}", e);
            }

            client = c.Enter(() => EchoClient.Connect(IPAddress.Parse(GuestAddress), EchoPort));
            await Eventually.TrueAsync(() => client.Echoed >= 3, TimeSpan.FromMinutes(2), $"the guest echoes the client's lines ({client.Failure?.Message})");

            int lastBefore = (await Counts(source.Client)).Last();
            (string last, List<string> lines) = await MigrateAsync(source.Client, "web", "10.77.0.11:9555");
            string progress = string.Join("\n", lines);
            Assert.True(last.StartsWith(MigrationLines.Migrated, StringComparison.Ordinal), $"{last}\n{progress}\n{destination.Output}");
            int echoedAtMove = client.Echoed;
            Assert.DoesNotContain(await source.Client.ListAsync(), d => d.Name == "web");
            DomainInfo moved = (await destination.Client.ListAsync()).Single();
            Assert.Equal(("web", "running"), (moved.Name, moved.State));

            // The counter goes on there (no reboot), and the connection opened before the move echoes on.
            await Eventually.TrueAsync(async () => (await Counts(destination.Client)).Length >= 4, TimeSpan.FromMinutes(3), "the migrated guest counts on");
            await Eventually.TrueAsync(() => client.Echoed >= echoedAtMove + 5, TimeSpan.FromMinutes(2), $"the TCP connection echoes after the move ({client.Failure?.Message}; {progress})");
            int[] after = await Counts(destination.Client);
            string history = await History(destination.Client);
            Assert.DoesNotContain("Linux version", history);
            Assert.True(after[0] > lastBefore, $"the destination's first count {after[0]} follows the source's {lastBefore}");
            Assert.Equal(Enumerable.Range(after[0], after.Length), after);
            client.Stop();
            Assert.Null(client.Failure);

            await destination.Client.DestroyAsync("web");
            byte[] image = File.ReadAllBytes(disk);
            for (int i = 1; i <= after[^1]; i++)
            {
                Assert.Equal($"DISK {i:D8}", Encoding.ASCII.GetString(image, i * 512, 13));
            }
        }
        finally
        {
            client?.Dispose();
            await source.DestroyAllAsync();
            await destination.DestroyAllAsync();
        }
    }

    /// <summary>In <paramref name="side"/>: a bridge with this host's address, the TAP the VMM will open, and a veth to <paramref name="client"/>'s bridge.</summary>
    private static void Wire(NetworkNamespace side, string address, string uplink, NetworkNamespace client)
    {
        side.Ip("link", "set", "lo", "up");
        side.Ip("link", "add", "br0", "type", "bridge");
        side.Ip("addr", "add", $"{address}/24", "dev", "br0");
        side.Ip("link", "set", "br0", "up");
        side.Ip("tuntap", "add", "dev", TapName, "mode", "tap", "vnet_hdr");
        side.Ip("link", "set", TapName, "master", "br0");
        side.Ip("link", "set", TapName, "up");
        side.Ip("link", "add", "veth0", "type", "veth", "peer", "name", uplink, "netns", client.Name);
        side.Ip("link", "set", "veth0", "master", "br0");
        side.Ip("link", "set", "veth0", "up");
        client.Ip("link", "set", uplink, "master", "br0");
        client.Ip("link", "set", uplink, "up");
    }

    private static async Task<string> History(DaemonClient client) => Encoding.UTF8.GetString(await client.ConsoleHistoryAsync("web"));

    private static async Task<int[]> Counts(DaemonClient client) =>
        CountPattern().Matches(await History(client)).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();

    private static async Task<(string Last, List<string> Lines)> MigrateAsync(DaemonClient client, string domain, string target)
    {
        using HttpClient http = UnixSocketHttp.CreateClient(client.SocketPath, Timeout.InfiniteTimeSpan);
        var lines = new List<string>();
        string last = await MigrationLines.RelayAsync(http, HttpMethod.Post, $"/domains/{domain}/migrate", new Dictionary<string, object> { ["destination"] = target, ["downtime_ms"] = 300 }, line =>
        {
            lines.Add(line);
            return Task.CompletedTask;
        }, CancellationToken.None);
        return (last, lines);
    }

    /// <summary>`sharpvisor daemon` run by `ip netns exec` in a namespace, with its own runtime directory.</summary>
    private sealed class DaemonProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private DaemonProcess(Process process, string runtime)
        {
            _process = process;
            Client = new DaemonClient(Path.Combine(runtime, "sharpvisord.sock"));
        }

        public DaemonClient Client { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static DaemonProcess Start(NetworkNamespace ns, string runtime, params string[] options)
        {
            Directory.CreateDirectory(runtime);
            var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string argument in (string[])["netns", "exec", ns.Name, SharpVisorCommand.Dotnet, SharpVisorCommand.AssemblyPath, "daemon", "--no-cgroups", .. options])
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment["SHARPVISOR_RUNTIME_DIR"] = runtime;
            var daemon = new DaemonProcess(Process.Start(start)!, runtime);
            daemon._process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
            daemon._process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
            daemon._process.BeginOutputReadLine();
            daemon._process.BeginErrorReadLine();
            return daemon;
        }

        public Task WaitReadyAsync() => Eventually.TrueAsync(
            () =>
            {
                Assert.False(_process.HasExited, $"the daemon exited: {Output}");
                return File.Exists(Client.SocketPath) && UnixSocketFiles.IsListening(Client.SocketPath);
            },
            TimeSpan.FromMinutes(1),
            "the daemon listens");

        /// <summary>Domains outlive their daemon: each one goes before the daemon does.</summary>
        public async Task DestroyAllAsync()
        {
            try
            {
                foreach (DomainInfo domain in await Client.ListAsync())
                {
                    await Client.DestroyAsync(domain.Name);
                }
            }
            catch (Exception e) when (e is DaemonException or IOException or HttpRequestException)
            {
                // The daemon is gone already; its domains went with the test's namespace.
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }

            _process.Dispose();
            Client.Dispose();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }
    }

    /// <summary>
    /// The client: one TCP connection (its socket made in namespace C) on which a line goes out
    /// every 200 ms and must come back as "ECHO line", in order. Waits up to 2 minutes per answer
    /// (the migration's pause and TCP's retransmission back-off); any other answer, a reset or a
    /// close is its <see cref="Failure"/>.
    /// </summary>
    private sealed class EchoClient : IDisposable
    {
        private readonly Socket _socket;
        private readonly Thread _thread;
        private volatile bool _stop;
        private int _echoed;

        private EchoClient(Socket socket)
        {
            _socket = socket;
            _thread = new Thread(Run) { IsBackground = true, Name = "echo-client" };
        }

        public int Echoed => Volatile.Read(ref _echoed);

        public Exception? Failure { get; private set; }

        public static EchoClient Connect(IPAddress address, int port)
        {
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
            while (true)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 120_000 };
                try
                {
                    socket.Connect(address, port);
                    var client = new EchoClient(socket);
                    client._thread.Start();
                    return client;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline)
                {
                    socket.Dispose();
                    Thread.Sleep(500);
                }
            }
        }

        public void Stop()
        {
            _stop = true;
            _thread.Join();
        }

        public void Dispose()
        {
            _stop = true;
            _socket.Dispose();
            _thread.Join();
        }

        private void Run()
        {
            try
            {
                using var stream = new NetworkStream(_socket, ownsSocket: false);
                using var reader = new StreamReader(stream, Encoding.ASCII);
                for (int i = 1; !_stop; i++)
                {
                    string line = $"ping {i}";
                    stream.Write(Encoding.ASCII.GetBytes(line + "\n"));
                    string? answer = reader.ReadLine();
                    if (answer != $"ECHO {line}")
                    {
                        throw new IOException($"sent '{line}', the guest answered '{answer ?? "(closed)"}'");
                    }

                    Interlocked.Increment(ref _echoed);
                    Thread.Sleep(200);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                if (!_stop)
                {
                    Failure = e;
                }
            }
        }
    }
}
