using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// The daemon's domains by id and name. Creation reserves the name first, so two creates
/// with one name cannot both succeed; ids only grow (never reused while a domain's
/// directory exists). On start it rebuilds itself from the runtime directory.
/// </summary>
public sealed partial class DomainRegistry
{
    public static readonly string[] Accelerators = ["auto", "kvm", "emulator"];

    private readonly object _lock = new();
    private readonly DomainEnvironment _environment;
    private readonly Dictionary<int, Domain> _byId = new();
    private readonly HashSet<string> _reservedNames = new(StringComparer.Ordinal);
    private int _lastId;

    public DomainRegistry(DomainEnvironment environment)
    {
        _environment = environment;
    }

    public DomainEnvironment Environment => _environment;

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();

    public IReadOnlyList<Domain> List()
    {
        lock (_lock)
        {
            return _byId.Values.OrderBy(d => d.Id).ToList();
        }
    }

    /// <summary>The domain named <paramref name="nameOrId"/>, or with that numeric id; 404 otherwise.</summary>
    public Domain Find(string nameOrId)
    {
        lock (_lock)
        {
            if (int.TryParse(nameOrId, NumberStyles.None, CultureInfo.InvariantCulture, out int id) && _byId.TryGetValue(id, out Domain? byId))
            {
                return byId;
            }

            return _byId.Values.FirstOrDefault(d => d.Name == nameOrId)
                ?? throw ApiException.NotFound($"no domain named '{nameOrId}'");
        }
    }

    public Task<Domain> CreateAsync(CreateDomainRequest request) => CreateAsync(request, snapshotPath: null);

    /// <summary>save: a snapshot, then the domain is destroyed unless <paramref name="keep"/> (then it runs on).</summary>
    public async Task SaveAsync(Domain domain, string statePath, bool keep)
    {
        await domain.SnapshotAsync(statePath, diff: false, stayPaused: !keep);
        if (!keep)
        {
            await DestroyAsync(domain);
        }
    }

    /// <summary>restore: a new domain whose VMM loads the snapshot instead of booting (docs/snapshot.md).</summary>
    public Task<Domain> RestoreFromSnapshotAsync(RestoreDomainRequest request)
    {
        string path = System.IO.Path.GetFullPath(request.Path);
        FullVmConfiguration config;
        string accelerator;
        try
        {
            config = SnapshotConfigurationView.Read(path, out accelerator);
        }
        catch (SharpVisor.Machine.Snapshots.SnapshotException e)
        {
            throw ApiException.BadRequest(e.Message);
        }

        var create = new CreateDomainRequest { Name = request.Name, Accelerator = accelerator, Config = config };
        return request.Base is null ? CreateAsync(create, path) : RestoreDiffAsync(create, path, System.IO.Path.GetFullPath(request.Base));
    }

    /// <summary>
    /// A diff snapshot on top of its base (docs/snapshot.md): the base's memory file is copied into
    /// the runtime directory, the diff's pages are laid over the copy, the VMM loads it with the
    /// diff's state file, and the copy goes. The base itself is left as it was.
    /// </summary>
    private async Task<Domain> RestoreDiffAsync(CreateDomainRequest request, string statePath, string basePath)
    {
        string merged = System.IO.Path.Combine(_environment.Runtime.Root, $"restore-{Guid.NewGuid().ToString("N")[..12]}.mem");
        try
        {
            try
            {
                File.Copy(Domain.SnapshotMemoryPath(basePath), merged);
                SharpVisor.Host.Vmm.SnapshotMemorySection.Rebase(merged, statePath, Domain.SnapshotMemoryPath(statePath));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SharpVisor.Machine.Snapshots.SnapshotException)
            {
                throw ApiException.BadRequest($"cannot lay the diff over its base {basePath}: {e.Message}");
            }

            return await CreateAsync(request, statePath, snapshotMemoryPath: merged);
        }
        finally
        {
            File.Delete(merged);
        }
    }

    /// <summary>An incoming live migration: a new domain whose VMM receives the machine on <paramref name="migrationSocket"/> instead of booting.</summary>
    public Task<Domain> ReceiveMigrationAsync(CreateDomainRequest request, string migrationSocket) => CreateAsync(request, null, migrationSocket);

    private async Task<Domain> CreateAsync(CreateDomainRequest request, string? snapshotPath, string? migrationSocket = null, string? snapshotMemoryPath = null)
    {
        string accelerator = request.Accelerator ?? "auto";
        if (!Accelerators.Contains(accelerator))
        {
            throw ApiException.BadRequest($"accelerator '{accelerator}' is not one of {string.Join(", ", Accelerators)}");
        }

        string type = request.Type ?? DomainTypes.Pc;
        if (!DomainTypes.All.Contains(type))
        {
            throw ApiException.BadRequest($"domain type '{type}' is not one of {string.Join(", ", DomainTypes.All)}");
        }

        if (DomainTypes.IsXen(type) && accelerator == "kvm")
        {
            // The VMM's --accel kvm path for pvh/hvm (KVM_CAP_XEN_HVM) is not offered through the daemon yet.
            throw ApiException.BadRequest($"a {type} domain cannot run on KVM here: the daemon runs Xen domains on the emulator (only `sharpvisor run --xen pvh|hvm --accel kvm` uses KVM's Xen support, KVM_CAP_XEN_HVM); use accelerator emulator or auto");
        }

        if (type == DomainTypes.Driver)
        {
            // A driver domain boots nothing: its kernel is SharpVisor's blkback (docs/xen.md, "Driver domains").
            if (request.Config.BootSource is not null || request.Config.Drives is { Count: > 0 } || request.Config.NetworkInterfaces is { Count: > 0 })
            {
                throw ApiException.BadRequest("a driver domain has no kernel, disks or NICs of its own: it serves the vbds other domains name with backend=");
            }
        }
        else
        {
            request = request with { Config = ResolveDriverDomains(request.Config, type) };

            // Validate the whole configuration here, as the VMM will, before any process starts.
            VmConfiguration.FromFull(request.Config).ToMachineConfiguration("check", accelerator);
        }

        int id;
        string name;
        lock (_lock)
        {
            id = _lastId + 1;
            name = request.Name ?? $"domain-{id}";
            if (!NamePattern().IsMatch(name))
            {
                throw ApiException.BadRequest($"domain name '{name}' is invalid: start with a letter, then up to 63 letters, digits, '_', '.' or '-'");
            }

            if (_reservedNames.Contains(name) || _byId.Values.Any(d => d.Name == name))
            {
                Domain? existing = _byId.Values.FirstOrDefault(d => d.Name == name);
                throw ApiException.Conflict($"a domain named '{name}' already exists{(existing is null ? "" : $" (id {existing.Id}, {Domains.DomainStateMachine.Name(existing.State)})")}");
            }

            _reservedNames.Add(name);
            _lastId = id;
        }

        try
        {
            Domain domain = await Domain.CreateAsync(_environment, id, name, accelerator, type, request.Config, snapshotPath, migrationSocket, snapshotMemoryPath);
            lock (_lock)
            {
                _byId.Add(id, domain);
            }

            _environment.Log($"domain {name} (id {id}) created");
            return domain;
        }
        catch
        {
            TryDeleteDirectory(_environment.Runtime.Domain(id).Directory);
            throw;
        }
        finally
        {
            lock (_lock)
            {
                _reservedNames.Remove(name);
            }
        }
    }

    /// <summary>xl's <c>backend=NAME</c> of each disk: the running driver domain of that name, by domid.</summary>
    private FullVmConfiguration ResolveDriverDomains(FullVmConfiguration config, string type)
    {
        if (config.Drives is not { } drives || drives.All(d => d.XenBackend is null))
        {
            return config;
        }

        if (!DomainTypes.IsXen(type))
        {
            throw ApiException.BadRequest($"a disk's backend= names a driver domain, which only a Xen domain's vbds can use (this is a {type} domain)");
        }

        var resolved = new List<Drive>();
        foreach (Drive drive in drives)
        {
            if (drive.XenBackend is not { } backend)
            {
                resolved.Add(drive);
                continue;
            }

            Domain? driver;
            lock (_lock)
            {
                driver = _byId.Values.FirstOrDefault(d => d.Name == backend);
            }

            // SharpVisor's driver domain (type = "driver"), or a guest that runs its own blkback: a PVH or
            // HVM domain (docs/xen.md, "A Linux guest as the driver domain"), whose VMM then seeds the vbd.
            if (driver is null || driver.Type is not (DomainTypes.Driver or DomainTypes.Pvh or DomainTypes.Hvm))
            {
                throw ApiException.BadRequest($"disk {drive.DriveId}: backend '{backend}' is not a driver domain of this daemon (create it first: type = \"driver\", or a PVH or HVM guest that runs blkback)");
            }

            resolved.Add(drive with { XenBackendDomain = (ushort)driver.Id });
        }

        return config with { Drives = resolved };
    }

    public async Task DestroyAsync(Domain domain)
    {
        await domain.DestroyAsync();
        lock (_lock)
        {
            _byId.Remove(domain.Id);
        }

        _environment.Log($"domain {domain.Name} (id {domain.Id}) destroyed");
    }

    /// <summary>Finds the domains of an earlier daemon in the runtime directory.</summary>
    public async Task RestoreAsync()
    {
        if (!Directory.Exists(_environment.Runtime.DomainsDirectory))
        {
            return;
        }

        foreach (string directory in Directory.EnumerateDirectories(_environment.Runtime.DomainsDirectory))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            {
                continue;
            }

            lock (_lock)
            {
                _lastId = Math.Max(_lastId, id);
            }

            DomainPaths paths = _environment.Runtime.Domain(id);
            DomainRecord? record;
            FullVmConfiguration? config;
            try
            {
                record = JsonSerializer.Deserialize(File.ReadAllBytes(paths.RecordFile), DaemonJsonContext.Default.DomainRecord);
                config = JsonSerializer.Deserialize(File.ReadAllBytes(paths.ConfigFile), FirecrackerJsonContext.Default.FullVmConfiguration);
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                _environment.Log($"skipping {directory}: {e.Message}");
                continue;
            }

            if (record is null || config is null || record.Id != id)
            {
                _environment.Log($"skipping {directory}: its domain record does not match");
                continue;
            }

            Domain domain = await Domain.RestoreAsync(_environment, record, config);
            lock (_lock)
            {
                _byId[id] = domain;
            }

            _environment.Log($"found domain {domain.Name} (id {id}): {Domains.DomainStateMachine.Name(domain.State)}");
        }
    }

    /// <summary>Closes the daemon's connections; every VMM keeps running for the next daemon.</summary>
    public async Task DetachAllAsync()
    {
        foreach (Domain domain in List())
        {
            await domain.DetachAsync();
        }
    }

    private static void TryDeleteDirectory(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (IOException)
        {
        }
    }
}
