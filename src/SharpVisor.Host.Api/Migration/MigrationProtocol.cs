using SharpVisor.Host.Vmm;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Host.Migration;

/// <summary>
/// What both ends of a migration agree on before any machine exists: the hello's magic and
/// version, and the Config frame's machine configuration (the daemon's listener checks it before it
/// starts a VMM, the VMM again when it receives) — docs/migration.md.
/// </summary>
public static class MigrationProtocol
{
    /// <summary>"SVMIGR" + version: the first bytes of a hello.</summary>
    public const string Magic = "SVMIGR";

    /// <summary>2: the Config frame's machine section carries the devices' rate limiters.</summary>
    public const uint Version = 2;

    /// <summary>The configuration a Config frame carries (the snapshot's <c>machine</c> section).</summary>
    public static MachineConfiguration ReadConfiguration(byte[] payload, out bool hasVirtioConsole)
    {
        try
        {
            var reader = new SnapshotReader(SnapshotConfiguration.Tag, payload);
            MachineConfiguration configuration = SnapshotConfiguration.Load(reader, out hasVirtioConsole);
            reader.EnsureEnd();
            return configuration;
        }
        catch (SnapshotException e)
        {
            throw new MigrationException($"the source's configuration is invalid: {e.Message}", e);
        }
    }

    /// <summary>The first file the configuration names that is not here (a disk on a path the destination does not share), as a message; null when all are.</summary>
    public static string? MissingFile(MachineConfiguration configuration)
    {
        foreach (DiskConfiguration disk in configuration.Disks)
        {
            if (!File.Exists(disk.Path))
            {
                return $"disk image {disk.Path} does not exist on the destination (the disk must be on a path both hosts see)";
            }
        }

        IEnumerable<string?> boot = [configuration.KernelPath, configuration.InitrdPath, .. configuration.ExtraInitrdPaths, .. configuration.Modules.Select(m => m.Path)];
        foreach (string? path in boot)
        {
            if (path is not null && !File.Exists(path))
            {
                return $"{path} (named by the machine's boot configuration) does not exist on the destination";
            }
        }

        return null;
    }
}
