using SharpVisor.Boot;
using SharpVisor.Devices.Virtio;
using SharpVisor.Machine.CpuTemplates;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// The "machine" section of a snapshot: what is needed to build the same machine again (kernel
/// and initrd paths, memory, vCPUs, the accelerator actually used, devices and their back ends).
/// Host-side streams (serial output, virtio-console file, log) are not part of it: the restorer
/// supplies its own.
/// </summary>
public static class SnapshotConfiguration
{
    /// <summary>Why a Xen domain (<paramref name="kind"/>: pv, pvh, hvm) cannot be saved, snapshotted or migrated: one line naming what the format lacks.</summary>
    public static string XenStateNotSaved(string kind) =>
        $"save, snapshot and migration of Xen {kind} domains are not implemented: the snapshot format lacks their Xen state " +
        "(event channels, grant table, XenStore, the shared-info and vCPU-info pages, the back-ends' ring state); the domain runs on";

    public const string Tag = "machine";

    public static byte[] Save(MachineConfiguration c, AcceleratorKind accelerator, MmuKind mmu, CpuVendorKind vendor)
    {
        var w = new SnapshotWriter();
        w.Write(c.KernelPath);
        w.Write(c.InitrdPath ?? string.Empty);
        w.Write(c.CommandLine);
        w.Write(c.Modules.Count);
        foreach (BootModule m in c.Modules)
        {
            w.Write(m.Path);
            w.Write(m.CommandLine ?? string.Empty);
        }

        w.Write(c.ExtraInitrdPaths.Count);
        foreach (string path in c.ExtraInitrdPaths)
        {
            w.Write(path);
        }

        w.Write(c.MemorySize);
        w.Write(c.VcpuCount);
        w.Write((int)accelerator);
        w.Write((int)mmu);
        w.Write((int)vendor);
        w.Write(c.Disks.Count);
        foreach (DiskConfiguration d in c.Disks)
        {
            w.Write(d.Path);
            w.Write(d.ReadOnly);
            w.Write(d.Id ?? string.Empty);
            w.Write((int)d.CacheMode);
            WriteRateLimit(w, d.RateLimit);
        }

        w.Write(c.NetworkInterfaces.Count);
        foreach (NetworkInterfaceConfiguration n in c.NetworkInterfaces)
        {
            w.Write(n.TapName ?? string.Empty);
            w.Write(n.Mac?.ToString() ?? string.Empty);
            w.Write(n.Id ?? string.Empty);
            WriteRateLimit(w, n.RxRateLimit);
            WriteRateLimit(w, n.TxRateLimit);
        }

        w.Write(c.Balloon is not null);
        if (c.Balloon is { } b)
        {
            w.Write(b.InitialTargetMib);
            w.Write(b.DeflateOnOom);
            w.Write(b.StatisticsIntervalSeconds);
        }

        w.Write(c.VirtioConsoleOutput is not null);
        w.Write(c.EntropyDevice);
        WriteCpuTemplate(w, c.CpuTemplate);
        w.Write((int)c.KernelDecompressor);
        return w.ToArray();
    }

    /// <summary>The configuration to rebuild; <paramref name="hasVirtioConsole"/> says whether the restorer must give it an output.</summary>
    public static MachineConfiguration Load(SnapshotReader r, out bool hasVirtioConsole)
    {
        string kernel = r.ReadString();
        string initrd = r.ReadString();
        string commandLine = r.ReadString();
        var modules = new List<BootModule>();
        for (int i = ReadCount(r, 64); i > 0; i--)
        {
            string path = r.ReadString();
            string line = r.ReadString();
            modules.Add(new BootModule(path, line.Length == 0 ? null : line));
        }

        var extra = new List<string>();
        for (int i = ReadCount(r, 64); i > 0; i--)
        {
            extra.Add(r.ReadString());
        }

        ulong memory = r.ReadUInt64();
        int vcpus = r.ReadInt32();
        var accelerator = (AcceleratorKind)r.ReadInt32();
        if (accelerator is not (AcceleratorKind.Kvm or AcceleratorKind.Emulator))
        {
            throw r.Invalid($"accelerator {accelerator}");
        }

        var mmu = (MmuKind)r.ReadInt32();
        var vendor = (CpuVendorKind)r.ReadInt32();
        if (!Enum.IsDefined(mmu) || !Enum.IsDefined(vendor))
        {
            throw r.Invalid("unknown MMU mode or CPU vendor");
        }

        var disks = new List<DiskConfiguration>();
        for (int i = ReadCount(r, 64); i > 0; i--)
        {
            string path = r.ReadString();
            bool readOnly = r.ReadBoolean();
            string id = r.ReadString();
            var cache = (DiskCacheMode)r.ReadInt32();
            disks.Add(new DiskConfiguration(path, readOnly, id.Length == 0 ? null : id, Enum.IsDefined(cache) ? cache : throw r.Invalid("unknown cache mode"))
            {
                RateLimit = ReadRateLimit(r, "rate_limiter"),
            });
        }

        var nics = new List<NetworkInterfaceConfiguration>();
        for (int i = ReadCount(r, 64); i > 0; i--)
        {
            string tap = r.ReadString();
            string mac = r.ReadString();
            string id = r.ReadString();
            nics.Add(new NetworkInterfaceConfiguration
            {
                TapName = tap.Length == 0 ? null : tap,
                Mac = mac.Length == 0 ? null : MacAddress.Parse(mac),
                Id = id.Length == 0 ? null : id,
                RxRateLimit = ReadRateLimit(r, "rx_rate_limiter"),
                TxRateLimit = ReadRateLimit(r, "tx_rate_limiter"),
            });
        }

        BalloonConfiguration? balloon = r.ReadBoolean()
            ? new BalloonConfiguration { InitialTargetMib = r.ReadInt64(), DeflateOnOom = r.ReadBoolean(), StatisticsIntervalSeconds = r.ReadInt32() }
            : null;
        hasVirtioConsole = r.ReadBoolean();
        bool entropy = r.ReadBoolean();
        CpuTemplate? template = ReadCpuTemplate(r);

        // Written after the CPU template since the VMM decompresses bzImages; earlier snapshots end here.
        var decompressor = r.Remaining > 0 ? (KernelDecompressor)r.ReadInt32() : KernelDecompressor.Guest;
        if (!Enum.IsDefined(decompressor))
        {
            throw r.Invalid($"unknown kernel decompressor {(int)decompressor}");
        }

        return new MachineConfiguration
        {
            KernelPath = kernel,
            InitrdPath = initrd.Length == 0 ? null : initrd,
            CommandLine = commandLine,
            Modules = modules,
            ExtraInitrdPaths = extra,
            MemorySize = memory,
            VcpuCount = vcpus,
            Accelerator = accelerator,
            Mmu = accelerator == AcceleratorKind.Emulator ? mmu : null,
            CpuVendor = vendor,
            Disks = disks,
            NetworkInterfaces = nics,
            Balloon = balloon,
            EntropyDevice = entropy,
            CpuTemplate = template,
            KernelDecompressor = decompressor,
        };
    }

    // The restored guest must see the CPU it was saved with: the template goes with the machine.
    private static void WriteCpuTemplate(SnapshotWriter w, CpuTemplate? template)
    {
        IReadOnlyList<CpuidModifier> cpuid = template?.Cpuid ?? [];
        IReadOnlyList<MsrModifier> msrs = template?.Msrs ?? [];
        w.Write(cpuid.Count);
        foreach (CpuidModifier m in cpuid)
        {
            w.Write(m.Leaf);
            w.Write(m.Subleaf);
            w.Write((int)m.Register);
            w.Write(m.Bits.Set);
            w.Write(m.Bits.Clear);
        }

        w.Write(msrs.Count);
        foreach (MsrModifier m in msrs)
        {
            w.Write(m.Index);
            w.Write(m.Bits.Set);
            w.Write(m.Bits.Clear);
        }
    }

    private static CpuTemplate? ReadCpuTemplate(SnapshotReader r)
    {
        var cpuid = new List<CpuidModifier>();
        for (int i = ReadCount(r, 4096); i > 0; i--)
        {
            uint leaf = r.ReadUInt32();
            uint subleaf = r.ReadUInt32();
            var register = (CpuidRegister)r.ReadInt32();
            if (!Enum.IsDefined(register))
            {
                throw r.Invalid("unknown CPUID register");
            }

            cpuid.Add(new CpuidModifier(leaf, subleaf, register, new TemplateBits(r.ReadUInt64(), r.ReadUInt64())));
        }

        var msrs = new List<MsrModifier>();
        for (int i = ReadCount(r, 4096); i > 0; i--)
        {
            msrs.Add(new MsrModifier(r.ReadUInt32(), new TemplateBits(r.ReadUInt64(), r.ReadUInt64())));
        }

        var template = new CpuTemplate { Cpuid = cpuid, Msrs = msrs };
        return template.IsEmpty ? null : template;
    }

    /// <summary>A device's rate limit: whether there is one, then each bucket (present, size, one-time burst, refill time).</summary>
    private static void WriteRateLimit(SnapshotWriter w, RateLimitConfiguration? limit)
    {
        w.Write(limit is not null);
        if (limit is not null)
        {
            WriteBucket(w, limit.Bandwidth);
            WriteBucket(w, limit.Ops);
        }
    }

    private static void WriteBucket(SnapshotWriter w, TokenBucketConfiguration? bucket)
    {
        w.Write(bucket is not null);
        if (bucket is not null)
        {
            w.Write(bucket.Size);
            w.Write(bucket.OneTimeBurst);
            w.Write(bucket.RefillTimeMs);
        }
    }

    /// <summary>Reads what <see cref="WriteRateLimit"/> wrote; values the API would refuse are refused here too.</summary>
    private static RateLimitConfiguration? ReadRateLimit(SnapshotReader r, string field)
    {
        if (!r.ReadBoolean())
        {
            return null;
        }

        var limit = new RateLimitConfiguration(ReadBucket(r), ReadBucket(r));
        return limit.Problem(field) is { } problem ? throw r.Invalid(problem) : limit;
    }

    private static TokenBucketConfiguration? ReadBucket(SnapshotReader r) =>
        r.ReadBoolean() ? new TokenBucketConfiguration(r.ReadInt64(), r.ReadInt64(), r.ReadInt64()) : null;

    private static int ReadCount(SnapshotReader r, int max)
    {
        int count = r.ReadInt32();
        return count >= 0 && count <= max ? count : throw r.Invalid($"{count} entries (at most {max})");
    }
}
