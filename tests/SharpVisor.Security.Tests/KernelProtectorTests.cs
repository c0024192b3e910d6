using SharpVisor.Machine.Protection;

namespace SharpVisor.Security.Tests;

public sealed class KernelProtectorTests
{
    private static readonly KernelImageLayout s_layout = KernelImageLayout.Parse("synthetic", SyntheticKernel.Build());

    [Fact]
    public void LocksOnlyOnceReadOnlyDataIsMappedReadOnlyAndFindsTheKaslrOffset()
    {
        using var guest = new FakeKernelGuest(rodataWritable: true);
        var lines = new List<string>();
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel,cr-pin,msr-pin"), s_layout, guest.Memory, lines.Add);

        protector.OnUserModeEntered(guest); // a usermode helper before mark_rodata_ro: not yet
        Assert.False(protector.Map.IsLocked);

        guest.MakeRodataReadOnly();
        protector.OnUserModeEntered(guest);
        Assert.True(protector.Map.IsLocked);
        Assert.Equal(FakeKernelGuest.Offset, protector.KaslrOffset);

        Assert.True(protector.Map.IsWriteProtected(FakeKernelGuest.TextFrame + 0x2FFF));
        Assert.True(protector.Map.IsWriteProtected(FakeKernelGuest.RodataFrame));
        Assert.True(protector.Map.IsWriteProtected(FakeKernelGuest.IdtFrame));
        Assert.False(protector.Map.IsWriteProtected(FakeKernelGuest.TextFrame + 0x3000));
        Assert.True(protector.Map.IsSupervisorExecutable(SyntheticKernel.TextStart + FakeKernelGuest.Offset));
        Assert.False(protector.Map.IsSupervisorExecutable(SyntheticKernel.RodataStart + FakeKernelGuest.Offset));
        Assert.False(protector.Map.IsSupervisorExecutable(0xFFFF_8880_0040_0000)); // the direct map
        Assert.True(protector.Map.IsSupervisorExecutable(0xFFFF_FFFF_C012_3000));  // a module

        RegisterPins pins = protector.Map.Pins;
        Assert.Equal(1UL << 16, pins.Cr0Bits);
        Assert.Equal(1UL << 20, pins.Cr4Bits); // SMEP was set, SMAP/UMIP were not
        Assert.Equal(1UL << 11, pins.EferBits);
        Assert.Equal(guest.Lstar, pins.Lstar);
        Assert.Equal(guest.SysenterEip, pins.SysenterEip);
        Assert.Contains(lines, l => l.StartsWith("protection locked", StringComparison.Ordinal) && l.Contains("KASLR offset 0x2000000"));
    }

    [Fact]
    public void ARunningDomainsPolicyCanBeRaisedButNotLowered()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        var lines = new List<string>();
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel,mode=log,measure=60"), s_layout, guest.Memory, lines.Add);

        // Before the lock pins may be added; log mode becomes enforce, measurement more frequent.
        protector.Raise(ProtectionPolicy.Parse("kernel,cr-pin,msr-pin,measure=30"));
        Assert.True(protector.Map.Enforce);
        Assert.Equal("kernel,cr-pin,msr-pin,measure=30,mode=enforce", protector.Policy.ToString());
        Assert.Contains(lines, l => l.StartsWith("protection policy raised: kernel,measure=60,mode=log -> kernel,cr-pin", StringComparison.Ordinal));

        // Lowering anything is refused and changes nothing.
        foreach (string lower in new[] { "cr-pin,msr-pin,measure=30", "kernel,cr-pin,msr-pin,measure=30,mode=log", "kernel,cr-pin,msr-pin,measure=90", "kernel,cr-pin,msr-pin" })
        {
            ArgumentException e = Assert.Throws<ArgumentException>(() => protector.Raise(ProtectionPolicy.Parse(lower)));
            Assert.Contains("lowering a running domain's protection is refused", e.Message);
        }

        Assert.Equal("kernel,cr-pin,msr-pin,measure=30,mode=enforce", protector.Policy.ToString());
        protector.OnUserModeEntered(guest);
        Assert.True(protector.Map.IsLocked);
        Assert.NotNull(protector.Map.Pins.Lstar); // the raised msr-pin took part in the lock
    }

    [Fact]
    public void PinsCannotBeAddedAfterTheLock()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel,mode=log"), s_layout, guest.Memory, null);
        protector.OnUserModeEntered(guest);

        ArgumentException e = Assert.Throws<ArgumentException>(() => protector.Raise(ProtectionPolicy.Parse("kernel,msr-pin")));
        Assert.Contains("locked already", e.Message);
        Assert.False(protector.Map.Enforce);
        protector.Raise(ProtectionPolicy.Parse("kernel"));
        Assert.True(protector.Map.Enforce);
    }

    [Fact]
    public void AChangedProtectedByteIsAMeasurementMismatchInTheChainedLog()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        string log = Path.Combine(Path.GetTempPath(), $"measure-{Guid.NewGuid():N}.log");
        try
        {
            using (var protector = new KernelProtector(ProtectionPolicy.Parse($"kernel,measure-log={log}"), s_layout, guest.Memory, null))
            {
                protector.OnUserModeEntered(guest);
                Measurement golden = protector.Golden!;
                Assert.Equal(golden.Digest, protector.MeasureNow()!.Digest);
                Assert.Equal(0, protector.ViolationCount);

                guest.Memory.Write<byte>(FakeKernelGuest.TextFrame + 0x123, 0xCC); // what a DMA or log-mode write would do
                Measurement changed = protector.MeasureNow()!;
                Assert.NotEqual(golden.Digest, changed.Digest);
                Assert.NotEqual(golden.Text, changed.Text);
                Assert.Equal(golden.ReadOnlyData, changed.ReadOnlyData);
                Assert.Equal(1, protector.Violations(ProtectionViolationKind.Measurement));
                Assert.Equal(3 * 4096 * 2 + 4096, changed.BytesHashed);
            }

            string[] lines = File.ReadAllLines(log);
            Assert.Equal(3, lines.Length);
            Assert.Contains(" golden ", lines[0]);
            Assert.Contains(" match ", lines[1]);
            Assert.Contains(" MISMATCH ", lines[2]);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(log));
            Assert.Equal(3, lines.Select(l => l[(l.IndexOf("chain=", StringComparison.Ordinal) + 6)..]).Distinct().Count());
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public void ViolationsAreCountedAndReportedAsOneLine()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        var lines = new List<string>();
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel"), s_layout, guest.Memory, lines.Add);
        protector.OnUserModeEntered(guest);
        Assert.True(protector.Map.Report(ProtectionViolationKind.KernelWrite, 0, 0xFFFF_FFFF_C000_1234, 0xFFFF_8880_0040_0000, 0));
        Assert.False(protector.Map.AllowsDeviceWrite(FakeKernelGuest.TextFrame, 512));
        Assert.Equal(2, protector.ViolationCount);
        Assert.Contains("protection violation: kind=kernel-write vcpu=0 rip=0xffffffffc0001234 target=0xffff888000400000 value=0x0 action=blocked", lines);
        Assert.Contains(lines, l => l.StartsWith("protection violation: kind=dma device target=0x400000", StringComparison.Ordinal));
    }

    [Fact]
    public void FramesOutsideGuestRamAreNeverProtected()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        guest.MapIdtTo(0xF_FFFF_F000_0000); // far beyond the guest's 16 MiB (and the MMIO hole)
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel"), s_layout, guest.Memory, null);
        protector.OnUserModeEntered(guest);
        Assert.True(protector.Map.IsLocked);
        Assert.Null(protector.LockFailure);
        Assert.DoesNotContain(protector.Map.WriteProtected, r => r.End > 16 << 20);
        Assert.True(protector.Map.IsWriteProtected(FakeKernelGuest.TextFrame));
    }
}
