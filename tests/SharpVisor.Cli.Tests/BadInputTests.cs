using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// Bad input gets one clear error line and exit status 125 — never a stack trace — and the
/// guest never starts.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sharpvisor-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string WriteFile(string name, byte[] contents)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, contents);
        return path;
    }

    private static void AssertOneLineError(SharpVisorProcess.Result result, string expectedFragment)
    {
        Assert.Equal(125, result.ExitCode);
        string[] lines = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string error = Assert.Single(lines, l => l.StartsWith("sharpvisor: error:", StringComparison.Ordinal));
        Assert.Contains(expectedFragment, error, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", result.StandardError);
        Assert.DoesNotContain("Exception", result.StandardError);
        Assert.Equal("", result.StandardOutput);
    }

    private static SharpVisorProcess.Result Run(params string[] arguments) =>
        SharpVisorProcess.Run(["run", "--serial", "none", .. arguments]);

    [Fact]
    public void XenWithKvmIsRefusedInOneLine()
    {
        AssertOneLineError(SharpVisorProcess.Run(["run", "--serial", "none", "--xen", "pvh", "--accel", "kvm"]), "KVM_CAP_XEN_HVM");
    }

    [Theory]
    [InlineData("kernel,measure=0", "measure is a whole number of seconds")]
    [InlineData("kernel,nx", "unknown item 'nx'")]
    [InlineData("mode=log", "nothing to protect")]
    public void BadProtectionPolicyIsRefusedInOneLine(string policy, string fragment)
    {
        AssertOneLineError(Run("--protect", policy), fragment);
    }

    [Fact]
    public void AQuoteNeedsProtectionAndAHexNonce()
    {
        AssertOneLineError(Run("--attest-quote", Path.Combine(_directory, "q.json"), "--attest-nonce", "00"), "--attest-quote needs --protect");
        AssertOneLineError(Run("--protect", "kernel", "--attest-quote", Path.Combine(_directory, "q.json"), "--attest-nonce", "xyz"), "--attest-nonce xyz");
    }

    [Fact]
    public void MissingKernel()
    {
        string path = Path.Combine(_directory, "no-such-kernel");
        AssertOneLineError(Run("--kernel", path), path);
    }

    [Fact]
    public void KernelThatIsADirectory()
    {
        AssertOneLineError(Run("--kernel", _directory), _directory);
    }

    [Fact]
    public void UnreadableKernel()
    {
        if (!HostCapabilities.IsRoot)
        {
            return; // needs root to create a file another user cannot read; CI runs as root
        }

        string path = WriteFile("secret-kernel", new byte[4096]);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.OtherExecute | UnixFileMode.OtherRead);
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--serial", "none", "--kernel", path],
            environment: new Dictionary<string, string> { ["SHARPVISOR_KVM_DEVICE"] = "/dev/null" },
            runAsUser: "65534");
        Assert.Equal(125, result.ExitCode);
        Assert.Contains("sharpvisor: error:", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public void TextFileIsNotAKernel()
    {
        string path = WriteFile("notes.txt", "this is not a kernel\n"u8.ToArray());
        AssertOneLineError(Run("--kernel", path), "notes.txt");
    }

    [Fact]
    public void RandomBytesAreNotAKernel()
    {
        var bytes = new byte[64 * 1024];
        new Random(1234).NextBytes(bytes);
        string path = WriteFile("random.bin", bytes);
        AssertOneLineError(Run("--kernel", path), "random.bin");
    }

    [Fact]
    public void TruncatedBzImage()
    {
        Assert.True(File.Exists(DefaultGuestFiles.Kernel), $"default guest missing: {DefaultGuestFiles.Kernel} (./test.sh builds it)");
        byte[] head = File.ReadAllBytes(DefaultGuestFiles.Kernel).AsSpan(0, 64 * 1024).ToArray();
        string path = WriteFile("truncated-vmlinuz", head);
        AssertOneLineError(Run("--kernel", path), "truncated");
    }

    [Fact]
    public void InitrdThatDoesNotFit()
    {
        string initrd = Path.Combine(_directory, "huge-initrd");
        using (FileStream stream = File.Create(initrd))
        {
            stream.SetLength(200L << 20); // sparse: 200 MiB of zeros
        }

        AssertOneLineError(Run("--kernel", DefaultGuestFiles.Kernel, "--initrd", initrd, "--memory", "128M"), "initrd");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1M")]
    [InlineData("5T")]
    [InlineData("lots")]
    [InlineData("99999999999999999999G")]
    [InlineData("-5")]
    public void AbsurdMemorySizes(string size)
    {
        AssertOneLineError(Run("--kernel", DefaultGuestFiles.Kernel, "--memory", size), "memory");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1000")]
    public void AbsurdVcpuCounts(string count)
    {
        AssertOneLineError(Run("--kernel", DefaultGuestFiles.Kernel, "--cpus", count), "vCPU");
    }

    [Fact]
    public void NoKvmDeviceWhenKvmIsAskedFor()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--serial", "none", "--accel", "kvm", "--kernel", DefaultGuestFiles.Kernel],
            environment: new Dictionary<string, string> { ["SHARPVISOR_KVM_DEVICE"] = "/nonexistent/kvm" });
        AssertOneLineError(result, "/nonexistent/kvm");
    }

    [KvmFact]
    public void NoPermissionForKvm()
    {
        if (!HostCapabilities.IsRoot)
        {
            return; // an unprivileged user cannot be made from here
        }

        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--serial", "none", "--accel", "kvm", "--kernel", DefaultGuestFiles.Kernel], runAsUser: "65534");
        Assert.Equal(125, result.ExitCode);
        Assert.Contains("permission", result.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public void UnknownAccelerator()
    {
        SharpVisorProcess.Result result = Run("--kernel", DefaultGuestFiles.Kernel, "--accel", "warp-drive");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("warp-drive", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public void AnMmuModeWithKvm()
    {
        AssertOneLineError(Run("--kernel", DefaultGuestFiles.Kernel, "--accel", "kvm", "--mmu", "shadow"), "--mmu shadow");
    }

    [Fact]
    public void UnknownMmuMode()
    {
        SharpVisorProcess.Result result = Run("--kernel", DefaultGuestFiles.Kernel, "--accel", "emulator", "--mmu", "psychic");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("psychic", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public void UnknownKernelDecompressor()
    {
        SharpVisorProcess.Result result = Run("--kernel", DefaultGuestFiles.Kernel, "--accel", "emulator", "--kernel-decompressor", "bios");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("bios", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public void UnknownTier()
    {
        SharpVisorProcess.Result result = Run("--kernel", DefaultGuestFiles.Kernel, "--accel", "emulator", "--tier", "turbo");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("turbo", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Theory]
    [InlineData("cyrix")]
    [InlineData("Intel")]
    [InlineData("")]
    public void UnknownCpuVendor(string vendor)
    {
        AssertOneLineError(Run("--kernel", DefaultGuestFiles.Kernel, "--accel", "emulator", "--cpu-vendor", vendor), $"--cpu-vendor {vendor}:");
    }

    [Fact]
    public void BadSerialSpec()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(["run", "--serial", "carrier-pigeon", "--kernel", DefaultGuestFiles.Kernel]);
        AssertOneLineError(result, "carrier-pigeon");
    }
}
