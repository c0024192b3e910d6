using System.Net;
using System.Text;
using SharpVisor.Cli;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Mmds;

/// <summary>
/// A real guest reaches the MMDS (V2) through its virtio-net NIC: ARP for 169.254.169.254,
/// a session token from PUT /latest/api/token, then its key with the token — and without the
/// token it is refused. The requests go through busybox nc: the default guest's busybox wget
/// segfaults on any URL here (a busybox bug, with or without --header), so it is not used.
/// </summary>
public sealed class MmdsGuestTests
{
    [DefaultGuestFact(NeedsNetwork = true)]
    public async Task TheGuestFetchesAKeyWithAV2Token()
    {
        using var directory = new TempDirectory();
        using NetworkNamespace ns = NetworkNamespace.Create();
        ns.Ip("tuntap", "add", "dev", "mmdstap0", "mode", "tap", "vnet_hdr");
        ns.Ip("link", "set", "mmdstap0", "up");
        string hook = """
            ip link set eth0 up
            ip addr add 169.254.0.2/16 dev eth0
            TOKEN=$(printf 'PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n' | nc -w 10 169.254.169.254 80 | tail -n 1)
            echo "MMDS-TOKEN-LENGTH ${#TOKEN}"
            echo "MMDS-V2 $(printf 'GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n' "$TOKEN" | nc -w 10 169.254.169.254 80 | tail -n 1)"
            echo "MMDS-NO-TOKEN $(printf 'GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n' | nc -w 10 169.254.169.254 80 | head -n 1)"
            echo MMDS-HOOK-DONE
            """;
        string initrd = HookedInitrd.Write(directory.File("initrd.img"), hook);
        string socket = directory.File("fc.sock");

        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-mmds"], ns);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(60));
            using HttpClient api = UnixSocketHttp.CreateClient(socket);
            (string Path, string Body)[] calls =
            [
                ("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 256}"""),
                ("/boot-source", $$"""{"kernel_image_path": "{{GuestBootCapability.Kernel}}", "initrd_path": "{{initrd}}", "boot_args": "{{DefaultGuest.CommandLine}} autopoweroff"}"""),
                ("/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "mmdstap0", "guest_mac": "06:00:ac:10:00:02"}"""),
                ("/mmds/config", """{"version": "V2", "network_interfaces": ["eth0"]}"""),
                ("/mmds", """{"latest": {"meta-data": {"ami-id": "ami-5ce7c0de"}}}"""),
                ("/actions", """{"action_type": "InstanceStart"}"""),
            ];
            foreach ((string path, string body) in calls)
            {
                using HttpResponseMessage response = await api.PutAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
                Assert.True(response.StatusCode == HttpStatusCode.NoContent, $"PUT {path}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromMinutes(8)), "the guest powers off after its hook");
            string output = firecracker.Output;
            Assert.Contains("MMDS-HOOK-DONE", output);
            Assert.Contains("MMDS-TOKEN-LENGTH 44", output);
            Assert.Contains("MMDS-V2 ami-5ce7c0de", output);
            Assert.Contains("MMDS-NO-TOKEN HTTP/1.1 401 ", output);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }
    }
}
