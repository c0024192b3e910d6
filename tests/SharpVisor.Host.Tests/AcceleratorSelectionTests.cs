using SharpVisor.Emulator;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Kvm;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>kvm / emulator / auto, and the sentence that says which and why.</summary>
public sealed class AcceleratorSelectionTests : IDisposable
{
    private static readonly KvmHostStatus s_hardware = new(true, false, "/dev/kvm is hardware-backed (VT-x/AMD-V)");
    private static readonly KvmHostStatus s_pvm = new(true, true, "/dev/kvm is PVM-backed (module kvm_pvm is loaded). " + KvmHost.PvmExplanation);
    private static readonly KvmHostStatus s_missing = new(false, false, "/dev/kvm not found: load the kvm_intel or kvm_amd module");

    private readonly string _root = Directory.CreateTempSubdirectory("sharpvisor-accel-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData(null, MmuMode.Shadow)]
    [InlineData(MmuMode.Shadow, MmuMode.Shadow)]
    [InlineData(MmuMode.Nested, MmuMode.Nested)]
    public void TheEmulatorAsAskedNeedsNoKvm(MmuMode? asked, MmuMode expected)
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Emulator, asked, "/dev/kvm", NeverProbed);

        EmulatorAccelerator emulator = Assert.IsType<EmulatorAccelerator>(selection.Accelerator);
        Assert.Equal(expected, emulator.MmuMode);
        Assert.Equal("emulator", emulator.Name);
        Assert.Equal($"emulator ({expected.ToString().ToLowerInvariant()} paging): as asked", selection.Reason);
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void TheEmulatorPresentsTheHostsVendorUnlessAskedOtherwise(CpuVendor host)
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Emulator, null, "/dev/kvm", NeverProbed, hostVendor: host);
        Assert.Equal(host, Assert.IsType<EmulatorAccelerator>(selection.Accelerator).Vendor);

        CpuVendor other = host == CpuVendor.Intel ? CpuVendor.Amd : CpuVendor.Intel;
        selection = AcceleratorSelection.Choose(AcceleratorKind.Emulator, null, "/dev/kvm", NeverProbed, vendor: other, hostVendor: host);
        Assert.Equal(other, Assert.IsType<EmulatorAccelerator>(selection.Accelerator).Vendor);
        Assert.Equal($"emulator (shadow paging, {HostCpu.Name(other)} CPU): as asked", selection.Reason);
    }

    [Fact]
    public void KvmRefusesAnotherVendorThanTheHosts()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            AcceleratorSelection.Choose(AcceleratorKind.Kvm, null, "/dev/kvm", () => s_hardware, vendor: CpuVendor.Intel, hostVendor: CpuVendor.Amd));
        Assert.Contains("--cpu-vendor intel", e.Message);
        Assert.Contains("--accel emulator", e.Message);

        // The host's own vendor is fine.
        AcceleratorSelection same = AcceleratorSelection.Choose(AcceleratorKind.Kvm, null, "/dev/kvm", () => s_hardware, vendor: CpuVendor.Amd, hostVendor: CpuVendor.Amd);
        Assert.IsType<KvmAccelerator>(same.Accelerator);
    }

    [Fact]
    public void AutoTakesTheEmulatorForAnotherVendorThanTheHosts()
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Auto, null, "/dev/kvm", NeverProbed, vendor: CpuVendor.Amd, hostVendor: CpuVendor.Intel);

        Assert.Equal(CpuVendor.Amd, Assert.IsType<EmulatorAccelerator>(selection.Accelerator).Vendor);
        Assert.Equal("emulator (shadow paging, amd CPU): --cpu-vendor amd differs from the host's intel, which KVM runs", selection.Reason);
    }

    [Fact]
    public void AutoTakesHardwareBackedKvm()
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Auto, null, "/dev/kvm", () => s_hardware);

        Assert.IsType<KvmAccelerator>(selection.Accelerator);
        Assert.Equal("kvm: hardware-assisted /dev/kvm", selection.Reason);
    }

    [Fact]
    public void AutoTakesTheEmulatorOverPvmAndSaysWhy()
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Auto, null, "/dev/kvm", () => s_pvm);

        Assert.IsType<EmulatorAccelerator>(selection.Accelerator);
        Assert.StartsWith("emulator (shadow paging): /dev/kvm is PVM-backed", selection.Reason);
        Assert.Contains("~1 µs/instruction", selection.Reason);
    }

    [Fact]
    public void AutoTakesTheEmulatorWhenKvmIsUnavailable()
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Auto, MmuMode.Nested, "/dev/kvm", () => s_missing);

        Assert.Equal(MmuMode.Nested, Assert.IsType<EmulatorAccelerator>(selection.Accelerator).MmuMode);
        Assert.Equal("emulator (nested paging): KVM is unavailable: /dev/kvm not found: load the kvm_intel or kvm_amd module", selection.Reason);
    }

    [Fact]
    public void AutoWithAMissingDevicePathProbesAndTakesTheEmulator()
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Auto, "/nonexistent/kvm");

        Assert.IsType<EmulatorAccelerator>(selection.Accelerator);
        Assert.Contains("/nonexistent/kvm not found", selection.Reason);
    }

    [Fact]
    public void AutoIgnoresAnMmuModeWhenItTakesKvmAndSaysSo()
    {
        AcceleratorSelection selection = AcceleratorSelection.Choose(AcceleratorKind.Auto, MmuMode.Nested, "/dev/kvm", () => s_hardware);

        Assert.IsType<KvmAccelerator>(selection.Accelerator);
        Assert.EndsWith("--mmu nested does not apply (KVM pages with EPT/NPT)", selection.Reason);
    }

    [Fact]
    public void KvmAsAskedButUnavailableIsAnError()
    {
        var e = Assert.Throws<KvmUnavailableException>(() => AcceleratorSelection.Choose(AcceleratorKind.Kvm, null, "/dev/kvm", () => s_missing));

        Assert.Equal(s_missing.Summary, e.Message);
    }

    [Fact]
    public void KvmWithAnMmuModeIsRefusedBeforeProbing()
    {
        var e = Assert.Throws<ArgumentException>(() => AcceleratorSelection.Choose(AcceleratorKind.Kvm, MmuMode.Shadow, "/dev/kvm", NeverProbed));

        Assert.Contains("--mmu shadow", e.Message);
        Assert.Contains("--accel emulator", e.Message);
    }

    [KvmFact]
    public void AutoOnThisDeviceFollowsTheProbeOfInjectedModuleAndCpuInfoPaths()
    {
        string modules = Path.Combine(_root, "module");
        Directory.CreateDirectory(Path.Combine(modules, "kvm_pvm"));
        string cpuinfo = Path.Combine(_root, "cpuinfo");
        File.WriteAllText(cpuinfo, "processor\t: 0\nflags\t\t: fpu vme vmx ept\n");

        AcceleratorSelection pvm = AcceleratorSelection.Choose(AcceleratorKind.Auto, null, "/dev/kvm", () => KvmHost.Probe("/dev/kvm", modules, cpuinfo));
        Directory.Delete(Path.Combine(modules, "kvm_pvm"));
        AcceleratorSelection hardware = AcceleratorSelection.Choose(AcceleratorKind.Auto, null, "/dev/kvm", () => KvmHost.Probe("/dev/kvm", modules, cpuinfo));

        Assert.IsType<EmulatorAccelerator>(pvm.Accelerator);
        Assert.Contains("module kvm_pvm is loaded", pvm.Reason);
        Assert.IsType<KvmAccelerator>(hardware.Accelerator);
    }

    private static KvmHostStatus NeverProbed() => throw new InvalidOperationException("KVM must not be probed here");
}
