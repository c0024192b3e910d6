using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>Bad device configurations are refused before anything is built, each with one clear message.</summary>
public sealed class DeviceConfigurationTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<string, string> BadMacs => new()
    {
        { "06:00:ac:10:00", "six hex bytes" },
        { "06:00:ac:10:00:zz", "six hex bytes" },
        { "06-00-ac-10-00-02", "six hex bytes" },
        { "01:00:5e:00:00:01", "multicast" },
        { "00:00:00:00:00:00", "all zeros" },
    };

    [Theory]
    [MemberData(nameof(BadMacs))]
    public void BadMacAddressesAreRefused(string text, string expected)
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => MacAddress.Parse(text));
        Assert.Contains(expected, e.Message);
        Assert.Contains(text, e.Message);
    }

    [Fact]
    public void MacAddressesRoundTripAndRandomOnesAreLocalUnicast()
    {
        Assert.Equal("06:00:ac:10:00:02", MacAddress.Parse("06:00:AC:10:00:02").ToString());
        Assert.Equal(new byte[] { 6, 0, 0xAC, 0x10, 0, 2 }, MacAddress.Parse("06:00:ac:10:00:02").ToBytes());
        for (int i = 0; i < 32; i++)
        {
            byte first = MacAddress.Random().ToBytes()[0];
            Assert.Equal(0x02, first & 0x03); // locally administered, unicast
        }
    }

    [Fact]
    public void MissingDiskImage() =>
        AssertRefused(new DiskConfiguration(_directory.File("absent.img")), "absent.img' does not exist");

    [Fact]
    public void DiskImageThatIsADirectory() =>
        AssertRefused(new DiskConfiguration(_directory.Path), "is a directory");

    [Fact]
    public void DiskImageThatIsADeviceNode() =>
        AssertRefused(new DiskConfiguration("/dev/null"), "'/dev/null' is not a regular file");

    [Fact]
    public void DiskImageSmallerThanASector() =>
        AssertRefused(new DiskConfiguration(_directory.CreateFile("tiny.img", 100)), "smaller than one 512-byte sector");

    [Fact]
    public void TheSameImageTwice()
    {
        string image = _directory.CreateFile("twice.img");
        AssertRefused(Configuration() with { Disks = [new DiskConfiguration(image), new DiskConfiguration(image, ReadOnly: true)] }, "given twice");
    }

    [Fact]
    public void MissingExtraInitrd() =>
        AssertRefused(Configuration() with { ExtraInitrdPaths = [_directory.File("hook.cpio")] }, "extra initrd");

    [Theory]
    [InlineData("a-name-longer-than-15", "not a valid interface name")]
    [InlineData("tap/0", "not a valid interface name")]
    [InlineData("", "not a valid interface name")]
    public void BadTapNames(string name, string expected) =>
        AssertRefused(Configuration() with { NetworkInterfaces = [new NetworkInterfaceConfiguration { TapName = name }] }, expected);

    [Fact]
    public void TwoNicsOnOneTap() =>
        AssertRefused(Configuration() with
        {
            NetworkInterfaces = [new NetworkInterfaceConfiguration { TapName = "tap7" }, new NetworkInterfaceConfiguration { TapName = "tap7" }],
        }, "given to two NICs");

    [Fact]
    public void BalloonLargerThanTheGuest() =>
        AssertRefused(Configuration() with { MemorySize = 64 << 20, Balloon = new BalloonConfiguration { InitialTargetMib = 65 } }, "out of range");

    private void AssertRefused(DiskConfiguration disk, string expected) =>
        AssertRefused(Configuration() with { Disks = [disk] }, expected);

    private static void AssertRefused(MachineConfiguration configuration, string expected)
    {
        ArgumentException e = Assert.Throws<ArgumentException>(configuration.Validate);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    private MachineConfiguration Configuration() => new() { KernelPath = _directory.CreateFile("kernel") };
}
