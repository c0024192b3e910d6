using System.Net;
using System.Text;
using SharpVisor.Cli;
using SharpVisor.Devices.Legacy;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Firecracker's boot-timer device under <c>sharpvisor firecracker --boot-timer</c>: the
/// device's own rules, and a real guest that writes 123 to 0xc0000000 with busybox devmem
/// and gets "Guest-boot-time = ..." into the VMM's log (with its virtio devices still working
/// behind the PCI window that now starts a page later).
/// </summary>
public sealed class BootTimerTests
{
    [Fact]
    public void OnlyAOneByteMagicWriteAtOffsetZeroIsReportedAndOnlySoOften()
    {
        var lines = new List<string>();
        var timer = new BootTimerDevice(lines.Add);

        timer.Write(0, [122]);
        timer.Write(1, [BootTimerDevice.Magic]);
        timer.Write(0, [BootTimerDevice.Magic, 0]);
        Span<byte> read = [0xFF, 0xFF];
        timer.Read(0, read);
        Assert.Empty(lines);
        Assert.Equal([0, 0], read.ToArray());

        for (int i = 0; i < BootTimerDevice.MaxReports + 10; i++)
        {
            timer.Write(0, [BootTimerDevice.Magic]);
        }

        Assert.Equal(BootTimerDevice.MaxReports, lines.Count);
        Assert.Matches(@"^Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms$", lines[0]);
        Assert.Equal("Guest-boot-time =   1500 us 1 ms,    250 CPU us 0 CPU ms", BootTimerDevice.Format(1500, 250));
    }

    [DefaultGuestFact]
    public async Task TheGuestsMagicWriteLogsItsBootTime()
    {
        using var directory = new TempDirectory();
        string hook = """
            devmem 0xc0000000 8 123
            echo BOOT-TIMER-WRITTEN
            """;
        string initrd = HookedInitrd.Write(directory.File("initrd.img"), hook);
        string log = directory.CreateFile("fc.log", 0);
        string socket = directory.File("fc.sock");

        await using var firecracker = FirecrackerProcess.Start(["--api-sock", socket, "--id", "fc-boot-timer", "--boot-timer", "--log-path", log, "--level", "Info"]);
        try
        {
            await firecracker.WaitForApiAsync(socket, TimeSpan.FromSeconds(60));
            using HttpClient api = UnixSocketHttp.CreateClient(socket);
            Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/machine-config", Json("""{"vcpu_count": 1, "mem_size_mib": 256}"""))).StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/boot-source",
                Json($$"""{"kernel_image_path": "{{GuestBootCapability.Kernel}}", "initrd_path": "{{initrd}}", "boot_args": "{{DefaultGuest.CommandLine}} autopoweroff"}"""))).StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/entropy", Json("{}"))).StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/actions", Json("""{"action_type": "InstanceStart"}"""))).StatusCode);

            Assert.True(await firecracker.ExitsWithinAsync(TimeSpan.FromMinutes(8)), "the guest powers off after its hook");
            Assert.Contains("BOOT-TIMER-WRITTEN", firecracker.Output);
            string[] timed = File.ReadAllLines(log).Where(l => l.Contains("Guest-boot-time = ", StringComparison.Ordinal)).ToArray();
            Assert.Single(timed);
            Assert.Matches(@"\[fc-boot-timer:[^\]]*\] Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms$", timed[0]);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw await firecracker.FailureAsync(e);
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
