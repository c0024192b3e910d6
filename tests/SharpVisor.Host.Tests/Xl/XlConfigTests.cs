using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Xl;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>xl.cfg as Xen users write it, turned into the daemon's create request; what SharpVisor cannot honour is refused by name.</summary>
public sealed class XlConfigTests
{
    private const string Full = """
        # A PVH guest, the way xl.cfg(5) spells it.
        name = "web"
        type = 'pvh'
        kernel = "/boot/vmlinuz"        # booted directly
        ramdisk = "initrd.img"
        extra = "console=hvc0 quiet"
        memory = 256; maxmem = 256
        vcpus = 2
        disk = [ 'file:/images/root.img,xvda,w',
                 "format=raw, vdev=xvdb, access=ro, target=/images/data.img",
                 '/images/scratch.img,raw,xvdc,rw', ]
        vif = [ 'mac=00:16:3e:01:02:03,vifname=tap-web' ]
        on_poweroff = "preserve"
        on_reboot = "restart"
        """;

    [Fact]
    public void AFullConfigBecomesTheCreateRequest()
    {
        XlDomainConfig config = XlDomainConfig.From(XlConfigFile.Parse(Full), "/srv/vms");

        CreateDomainRequest request = config.ToCreateRequest(null, "emulator");

        Assert.Equal(("web", "pvh", "emulator"), (request.Name, request.Type, request.Accelerator));
        Assert.Equal("/boot/vmlinuz", request.Config.BootSource!.KernelImagePath);
        Assert.Equal("/srv/vms/initrd.img", request.Config.BootSource.InitrdPath);
        Assert.Equal("console=hvc0 quiet", request.Config.BootSource.BootArgs);
        Assert.Equal((2, 256L), (request.Config.MachineConfig!.VcpuCount, request.Config.MachineConfig.MemSizeMib));
        Assert.Equal(
            [("xvda", "/images/root.img", false), ("xvdb", "/images/data.img", true), ("xvdc", "/images/scratch.img", false)],
            request.Config.Drives!.Select(d => (d.DriveId, d.PathOnHost!, d.IsReadOnly!.Value)));
        var nic = Assert.Single(request.Config.NetworkInterfaces!);
        Assert.Equal(("eth0", "tap-web", "00:16:3e:01:02:03"), (nic.IfaceId, nic.HostDevName, nic.GuestMac));
        Assert.Equal("other", config.ToCreateRequest("other", null).Name);
    }

    [Fact]
    public void RootAndExtraMakeTheCommandLineAndTheTypeDefaultsToPvh()
    {
        XlDomainConfig config = XlDomainConfig.From(XlConfigFile.Parse("kernel = '/k'\nroot = '/dev/xvda1 ro'\nextra = 'console=hvc0'\n"), "/");

        Assert.Equal(("pvh", "root=/dev/xvda1 ro console=hvc0", 128, 1), (config.Type, config.CommandLine, config.MemoryMib, config.Vcpus));
    }

    [Fact]
    public void ProtectBecomesTheCreateRequestsProtectionSection()
    {
        XlDomainConfig config = XlDomainConfig.From(XlConfigFile.Parse("kernel = '/k'\nprotect = 'kernel,cr-pin,msr-pin,measure=5'\n"), "/");

        Assert.Equal("kernel,cr-pin,msr-pin,measure=5", config.Protect);
        Assert.Equal("kernel,cr-pin,msr-pin,measure=5", config.ToCreateRequest(null, null).Config.Protection!.Policy);
        Assert.Null(XlDomainConfig.From(XlConfigFile.Parse("kernel = '/k'\n"), "/").ToCreateRequest(null, null).Config.Protection);
    }

    [Theory]
    [InlineData("kernel = '/k'\ntype = 'hvm'\n")]
    [InlineData("kernel = '/k'\nbuilder = 'hvm'\n")]
    public void AnHvmConfigIsAnHvmDomain(string text)
    {
        XlDomainConfig config = XlDomainConfig.From(XlConfigFile.Parse(text), "/");

        Assert.Equal("hvm", config.Type);
        Assert.Equal("hvm", config.ToCreateRequest("h", "emulator").Type);

        // The daemon builds an hvm domain's VMM with --xen hvm.
        string[] arguments = ProcessVmmLauncher.VmmArguments(new DomainPaths("/run/d"), new VmmIdentity("h", 3, "emulator") { Xen = DomainTypes.XenModeOf(config.Type) }).ToArray();
        Assert.Equal(["--xen", "hvm"], arguments[^2..]);
        Assert.Equal(["--xen-link", "/run"], arguments[^4..^2]);
        Assert.True(DomainTypes.IsXen(config.Type));
    }

    [Fact]
    public void APvConfigIsAPvDomainBuiltWithXenPv()
    {
        XlDomainConfig config = XlDomainConfig.From(XlConfigFile.Parse("kernel = '/k'\ntype = 'pv'\n"), "/");

        Assert.Equal("pv", config.ToCreateRequest("p", "emulator").Type);
        string[] arguments = ProcessVmmLauncher.VmmArguments(new DomainPaths("/run/d"), new VmmIdentity("p", 4, "emulator") { Xen = DomainTypes.XenModeOf(config.Type) }).ToArray();
        Assert.Equal(["--xen", "pv"], arguments[^2..]);
        Assert.True(DomainTypes.IsXen(config.Type));
    }

    [Fact]
    public void ADriverDomainConfigIsADriverDomainAndBackendNamesItOnADisk()
    {
        XlDomainConfig driver = XlDomainConfig.From(XlConfigFile.Parse("name = 'blkdd'\ntype = 'driver'\n"), "/");
        CreateDomainRequest request = driver.ToCreateRequest(null, "emulator");
        Assert.Equal(("blkdd", "driver"), (request.Name, request.Type));
        Assert.Null(request.Config.BootSource);
        Assert.Null(request.Config.Drives);
        string[] arguments = ProcessVmmLauncher.VmmArguments(new DomainPaths("/run/domains/3"), new VmmIdentity("blkdd", 3, "emulator") { Xen = DomainTypes.XenModeOf(driver.Type) }).ToArray();
        Assert.Equal(["--xen-link", "/run/domains", "--xen", "driver"], arguments[^4..]);

        XlDomainConfig guest = XlDomainConfig.From(XlConfigFile.Parse("kernel = '/k'\ndisk = [ 'file:/d.img,xvda,w,backend=blkdd', 'target=/e.img,vdev=xvdb,access=r' ]\n"), "/");
        Assert.Equal(["blkdd", null], guest.ToCreateRequest("g", "emulator").Config.Drives!.Select(d => d.XenBackend));
        Assert.Equal(("/d.img", "xvda", false), (guest.Disks[0].Path, guest.Disks[0].Vdev, guest.Disks[0].ReadOnly));
    }

    [Theory]
    [InlineData("kernel = '/k'\nvnc = 1\n", "line 2: 'vnc' is not a setting SharpVisor supports")]
    [InlineData("kernel = '/k'\ntype = 'hvm-pv'\n", "type = \"hvm-pv\" is not a domain type (pvh, hvm, pv, driver)")]
    [InlineData("name = 'dd'\ntype = 'driver'\nkernel = '/k'\n", "line 3: a driver domain (type = \"driver\") takes no 'kernel'")]
    [InlineData("kernel = '/k'\ndisk = [ 'a.img,raw,xvda,w,backend=-x' ]\n", "backend '-x' is not a domain name")]
    [InlineData("memory = 128\n", "'kernel' is required")]
    [InlineData("kernel = '/k'\nkernel = '/j'\n", "line 2: 'kernel' is set twice")]
    [InlineData("kernel = '/k\n", "line 1: the string has no closing '")]
    [InlineData("kernel = '/k'\ndisk = [ 'a.img,raw,xvda,w'\n", "line 2: the list has no closing ']'")]
    [InlineData("kernel = '/k'\nmemory = '128'\n", "line 2: 'memory' takes a positive whole number")]
    [InlineData("kernel = '/k'\nmemory = 128\nmaxmem = 512\n", "maxmem = 512 differs from memory = 128")]
    [InlineData("kernel = '/k'\ndisk = 'a.img'\n", "line 2: 'disk' takes a list")]
    [InlineData("kernel = '/k'\ndisk = [ 'a.qcow2,qcow2,xvda,w' ]\n", "format 'qcow2' is not supported")]
    [InlineData("kernel = '/k'\ndisk = [ 'a.img,raw,xvda,rwx' ]\n", "access 'rwx' is not r, ro, w or rw")]
    [InlineData("kernel = '/k'\ndisk = [ 'a.img,raw,floppy,w' ]\n", "vdev 'floppy' is not a disk name")]
    [InlineData("kernel = '/k'\nvif = [ 'bridge=xenbr0' ]\n", "'bridge' is not supported")]
    [InlineData("kernel = '/k'\nvif = [ 'mac=00:16:3e:00:00:01' ]\n", "name the host's TAP interface with vifname=")]
    [InlineData("kernel = '/k'\non_poweroff = 'destroy'\n", "on_poweroff = \"destroy\" is not supported")]
    [InlineData("kernel = '/k'\ncmdline = 'a'\nextra = 'b'\n", "both 'cmdline' and 'extra' are set")]
    [InlineData("kernel = '/k' junk\n", "line 1: unexpected 'j' after the value of 'kernel'")]
    [InlineData("kernel = '/k'\nprotect = 'kernel,measure=0'\n", "line 2: protect = \"kernel,measure=0\": --protect kernel,measure=0: measure is a whole number of seconds")]
    [InlineData("kernel = '/k'\nprotect = 1\n", "line 2: 'protect' takes a quoted string")]
    public void WhatCannotBeReadOrRunIsRefusedByName(string text, string expected)
    {
        var e = Assert.Throws<XlConfigException>(() => XlDomainConfig.From(XlConfigFile.Parse(text), "/"));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void JsonIsNotTakenForXl()
    {
        Assert.False(XlConfigFile.LooksLikeXl("  {\"boot-source\": {}}"));
        Assert.True(XlConfigFile.LooksLikeXl("# xl\nkernel = '/k'"));
    }
}
