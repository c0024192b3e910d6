using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using SharpVisor.Cli;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// virtio-vsock with Firecracker's host convention, against the default guest booted by the real
/// `sharpvisor firecracker` process (PUT /vsock), in one boot: a guest connection to host port P
/// reaches uds_path_P and gets its answer; a guest connection to a port nobody serves is refused;
/// 4 MiB from the guest arrive intact (many times the 256 KiB credit: credit updates work); a host
/// program connects to uds_path with "CONNECT 6000\n", reads "OK PORT\n" and talks to the guest's
/// listener; a CONNECT to a port the guest does not listen on is closed without an OK.
/// The guest side is tests/native/vsock-tool.c, linked statically and appended to the initramfs.
/// </summary>
public sealed class FirecrackerVsockTests
{
    private const int BulkBytes = 4 << 20;

    [DefaultGuestFact]
    public async Task GuestAndHostProgramsConnectBothWaysThroughTheUnixSockets()
    {
        using var directory = new TempDirectory();
        string tool = BuildVsockTool(directory);
        string hook = """
            /vsock-tool listen 6000
            /vsock-tool connect 2 5000 hello
            /vsock-tool connect 2 5999 nobody
            /vsock-tool send 2 5001 4194304
            echo VSOCK-HOOK-DONE
            """;
        string initrd = HookedInitrd.Write(directory.File("initrd.img"), new CpioArchive().AddFile("hook.sh", hook).AddFile("vsock-tool", File.ReadAllBytes(tool)));

        string uds = directory.File("v.sock");
        using Socket echo = Listen($"{uds}_5000");
        using Socket bulk = Listen($"{uds}_5001");
        Task<string> echoed = Task.Run(() => ServeEcho(echo));
        Task<(long Bytes, bool Intact)> received = Task.Run(() => ReceiveBulk(bulk));

        string socket = directory.File("fc.sock");
        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-vsock"]);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(60));
            Assert.Equal(204, Api(socket, "PUT", "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 256}""").Status);
            Assert.Equal(204, Api(socket, "PUT", "/boot-source",
                $$"""{"kernel_image_path": "{{GuestBootCapability.Kernel}}", "initrd_path": "{{initrd}}", "boot_args": "{{DefaultGuest.CommandLine}} autopoweroff"}""").Status);
            (int status, string body) = Api(socket, "PUT", "/vsock", """{"guest_cid": 2, "uds_path": "/tmp/x.sock"}""");
            Assert.Equal(400, status);
            Assert.Contains("guest_cid 2 is out of range", body);
            Assert.Equal(204, Api(socket, "PUT", "/vsock", $$"""{"guest_cid": 3, "uds_path": "{{uds}}"}""").Status);
            Assert.Equal(204, Api(socket, "PUT", "/actions", """{"action_type": "InstanceStart"}""").Status);
            Assert.Contains("\"vsock\":{\"guest_cid\":3", Api(socket, "GET", "/vm/config", null).Body);

            TimeSpan boot = TimeSpan.FromMinutes(8);
            await firecracker.WaitForLineAsync("VSOCK-LISTENING", boot);

            // Host-initiated: a port the guest does not listen on is closed without an OK...
            using (Socket refused = Connect(uds))
            {
                refused.Send("CONNECT 6001\n"u8);
                Assert.Equal("", ReadToEnd(refused));
            }

            // ... and its listener's port answers OK with our local port, then the stream is the guest's.
            using (Socket host = Connect(uds))
            {
                host.Send("CONNECT 6000\n"u8);
                string ok = ReadLine(host);
                Assert.Matches(@"^OK \d+$", ok);
                Assert.True(uint.Parse(ok[3..], System.Globalization.CultureInfo.InvariantCulture) >= 1u << 30, ok);
                host.Send("ping\n"u8);
                Assert.Equal("echo:ping", ReadLine(host));
            }

            await firecracker.WaitForLineAsync("VSOCK-HOOK-DONE", boot);
            Assert.Equal("hello", await echoed.WaitAsync(TimeSpan.FromSeconds(60)));
            string[] output = firecracker.Lines;
            Assert.Contains("VSOCK-REPLY pong:hello", output);
            Assert.Contains("VSOCK-SERVED ping", output);
            Assert.Contains(output, l => l.StartsWith("VSOCK-ERROR connect", StringComparison.Ordinal));
            Assert.Contains($"VSOCK-SENT {BulkBytes}", output);
            (long bytes, bool intact) = await received.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(BulkBytes, bytes);
            Assert.True(intact, "the bulk stream arrived with every byte in place");

            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromSeconds(120)), "the guest powers off after its hook");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }

        Assert.DoesNotContain("   at ", await firecracker.StandardErrorAsync());
        Assert.False(File.Exists(uds), "the VMM removes its socket when it exits");
    }

    private static string BuildVsockTool(TempDirectory directory)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "native", "vsock-tool.c");
        string binary = directory.File("vsock-tool");
        var gcc = Process.Start(new ProcessStartInfo("gcc", ["-static", "-Os", "-Wall", "-o", binary, source]) { RedirectStandardError = true })!;
        string errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        Assert.True(gcc.ExitCode == 0, $"gcc -static failed to build the guest's vsock tool: {errors}");
        return binary;
    }

    private static Socket Listen(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(path));
        s.Listen(4);
        return s;
    }

    private static Socket Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 180_000 };
        s.Connect(new UnixDomainSocketEndPoint(path));
        return s;
    }

    /// <summary>The guest sends a line and half-closes; the answer is "pong:LINE".</summary>
    private static string ServeEcho(Socket listener)
    {
        using Socket c = listener.Accept();
        c.ReceiveTimeout = 180_000;
        string line = ReadToEnd(c).TrimEnd('\n');
        c.Send(Encoding.ASCII.GetBytes($"pong:{line}\n"));
        return line;
    }

    /// <summary>Counts the guest's bytes and checks each against vsock-tool's pattern.</summary>
    private static (long Bytes, bool Intact) ReceiveBulk(Socket listener)
    {
        using Socket c = listener.Accept();
        c.ReceiveTimeout = 120_000;
        byte[] buffer = new byte[65536];
        long total = 0;
        bool intact = true;
        int n;
        while ((n = c.Receive(buffer)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                intact &= buffer[i] == (byte)((((total + i) % 65536) * 7) + 3);
            }

            total += n;
        }

        return (total, intact);
    }

    private static string ReadLine(Socket s)
    {
        var line = new StringBuilder();
        byte[] one = new byte[1];
        while (s.Receive(one) == 1 && one[0] != '\n')
        {
            line.Append((char)one[0]);
        }

        return line.ToString();
    }

    private static string ReadToEnd(Socket s)
    {
        var text = new StringBuilder();
        byte[] buffer = new byte[4096];
        int n;
        while ((n = s.Receive(buffer)) > 0)
        {
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        return text.ToString();
    }

    private static (int Status, string Body) Api(string socket, string method, string path, string? json)
    {
        var start = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { "-sS", "--unix-socket", socket, "-X", method, "-H", "Content-Type: application/json", "-w", "\n%{http_code}" })
        {
            start.ArgumentList.Add(argument);
        }

        if (json is not null)
        {
            start.ArgumentList.Add("--data");
            start.ArgumentList.Add(json);
        }

        start.ArgumentList.Add("http://localhost" + path);
        using Process curl = Process.Start(start)!;
        string output = curl.StandardOutput.ReadToEnd();
        curl.WaitForExit();
        int split = output.LastIndexOf('\n');
        return (int.Parse(output[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture), output[..split]);
    }
}
