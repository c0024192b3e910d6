using SharpVisor.Devices.Virtio;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine.Snapshots;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// A snapshot carries the drives' and NICs' rate limiters — the ones in force when it was taken,
/// after any PATCH — and the restored machine's devices enforce them again. Values the API would
/// refuse are refused when a snapshot is read, too.
/// </summary>
public sealed class RateLimiterSnapshotTests
{
    private static readonly RateLimitConfiguration s_configured = new(new TokenBucketConfiguration(1 << 20, 4096, 100), null);
    private static readonly RateLimitConfiguration s_patched = new(new TokenBucketConfiguration(256 << 10, 0, 250), new TokenBucketConfiguration(50, 10, 1000));

    [Fact]
    public void TheMachineSectionKeepsEveryDevicesRateLimiters()
    {
        var configuration = new MachineConfiguration
        {
            KernelPath = "/k",
            Disks =
            [
                new DiskConfiguration("/srv/a.img", false, "a") { RateLimit = s_patched },
                new DiskConfiguration("/srv/b.img", true, "b"),
            ],
            NetworkInterfaces =
            [
                new NetworkInterfaceConfiguration { TapName = "tap0", Id = "eth0", RxRateLimit = s_configured, TxRateLimit = s_patched },
                new NetworkInterfaceConfiguration { TapName = "tap1", Id = "eth1", TxRateLimit = new RateLimitConfiguration(null, new TokenBucketConfiguration(100, 0, 10)) },
            ],
        };

        MachineConfiguration loaded = RoundTrip(configuration);

        Assert.Equal(configuration.Disks, loaded.Disks);
        Assert.Equal(
            configuration.NetworkInterfaces.Select(n => (n.Id, n.RxRateLimit, n.TxRateLimit)),
            loaded.NetworkInterfaces.Select(n => (n.Id, n.RxRateLimit, n.TxRateLimit)));
    }

    [Theory]
    [InlineData(-1L, 0L, 100L, "must not be negative")]
    [InlineData(1024L, -5L, 100L, "must not be negative")]
    [InlineData(1L << 60, 0L, 100L, "must be at most")]
    [InlineData(1024L, 0L, 1L << 40, "one day")]
    public void ASnapshotWithAnAbsurdLimiterIsRefused(long size, long burst, long refillMs, string why)
    {
        var configuration = new MachineConfiguration
        {
            KernelPath = "/k",
            Disks = [new DiskConfiguration("/srv/a.img") { RateLimit = new RateLimitConfiguration(new TokenBucketConfiguration(size, burst, refillMs), null) }],
        };

        SnapshotException error = Assert.Throws<SnapshotException>(() => RoundTrip(configuration));
        Assert.Contains("rate_limiter.bandwidth", error.Message);
        Assert.Contains(why, error.Message);
    }

    /// <summary>A PATCH after boot is what the snapshot records; the restored disk is limited again.</summary>
    [Fact]
    public void ARestoredDiskKeepsTheLimiterInForceAtTheSnapshot()
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, EmulatorSnapshotTests.BuildKernel());
        string image = directory.File("disk.img");
        File.WriteAllBytes(image, new byte[1 << 20]);
        string state = directory.File("vm.state");
        string memory = directory.File("vm.mem");
        var configuration = new MachineConfiguration
        {
            KernelPath = kernel,
            MemorySize = 16UL << 20,
            Accelerator = AcceleratorKind.Emulator,
            Mmu = MmuKind.Shadow,
            SerialOutput = new CapturedOutput(),
            EntropyDevice = false,
            Disks = [new DiskConfiguration(image, false, "data") { RateLimit = s_configured }],
        };

        using (VirtualMachineMonitor source = VirtualMachineMonitor.Create(configuration))
        {
            source.Devices.UpdateDisk("data", null, s_patched);
            source.Pause(TimeSpan.FromMilliseconds(10)); // never run: nothing to park, but paused
            source.SaveSnapshot(state, memory);
        }

        using VirtualMachineMonitor restored = VirtualMachineMonitor.Restore(state, memory, c => c with { SerialOutput = new CapturedOutput() });
        Assert.Equal(s_patched, Assert.Single(restored.Configuration.Disks).RateLimit);
        VirtioBlockDevice disk = Assert.IsType<VirtioBlockDevice>(Assert.Single(restored.Devices.Devices, d => d.Name == "data").Device);
        Assert.NotNull(disk.RateLimiter);
    }

    private static MachineConfiguration RoundTrip(MachineConfiguration configuration)
    {
        byte[] saved = SnapshotConfiguration.Save(configuration, AcceleratorKind.Emulator, MmuKind.Shadow, CpuVendorKind.Amd);
        var reader = new SnapshotReader(SnapshotConfiguration.Tag, saved);
        MachineConfiguration loaded = SnapshotConfiguration.Load(reader, out _);
        reader.EnsureEnd();
        return loaded;
    }
}
