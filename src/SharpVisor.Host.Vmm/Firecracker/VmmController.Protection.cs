using SharpVisor.Host.Daemon;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;
using SharpVisor.Security;

namespace SharpVisor.Host.Firecracker;

/// <summary>Kernel runtime protection on the VMM's API (ProtectionRoutes, docs/security.md).</summary>
public sealed partial class VmmController
{
    /// <summary>
    /// The directory of the host's attestation key; default $SHARPVISOR_RUNTIME_DIR/attestation
    /// (the same key `sharpvisor run --attest-quote` uses).
    /// </summary>
    public string AttestationKeyDirectory { get; set; } = Path.Combine(RuntimeDirectory.FromEnvironment().Root, "attestation");

    /// <summary>
    /// PUT /sharpvisor/protection: before boot, the policy the domain starts with; on a running
    /// domain, a stricter policy (lowering is refused; a domain started unprotected cannot gain it,
    /// because the map is handed to the vCPUs when they are created).
    /// </summary>
    public void SetProtection(ProtectionConfiguration protection)
    {
        lock (_lock)
        {
            if (_state == VmmState.NotStarted)
            {
                _configuration.SetProtection(protection);
                return;
            }

            RequireLive("protection");
            KernelProtector protector = RequireProtector();
            ProtectionPolicy raised;
            try
            {
                raised = ProtectionPolicy.Parse(protection.Policy);
                protector.Raise(raised);
            }
            catch (ArgumentException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
        }
    }

    /// <summary>GET /sharpvisor/protection: the policy, the lock, the measurements and the violations.</summary>
    public ProtectionStatus GetProtection()
    {
        lock (_lock)
        {
            if (_state == VmmState.NotStarted)
            {
                ProtectionPolicy policy = _configuration.Protection
                    ?? throw ApiException.BadRequest("no protection is configured; PUT /sharpvisor/protection before InstanceStart");
                return new ProtectionStatus { Policy = policy.ToString(), Locked = false, Violations = new Dictionary<string, long>(), RecentViolations = [] };
            }

            RequireLive("protection");
            KernelProtector protector = RequireProtector();
            return new ProtectionStatus
            {
                Policy = protector.Policy.ToString(),
                Locked = protector.Map.IsLocked,
                LockedAt = protector.LockedAt,
                GoldenMeasurement = protector.Golden?.Digest,
                LatestMeasurement = protector.Latest?.Digest,
                Violations = Enum.GetValues<SharpVisor.Machine.Protection.ProtectionViolationKind>().ToDictionary(KernelProtector.KindName, protector.Violations),
                RecentViolations = _machine!.ProtectionEvents?.Recent() ?? [],
            };
        }
    }

    /// <summary>GET /sharpvisor/events: the running protected domain's violation events to follow.</summary>
    public ProtectionEventLog GetProtectionEvents()
    {
        lock (_lock)
        {
            RequireLive("events");
            RequireProtector();
            return _machine!.ProtectionEvents ?? throw ApiException.BadRequest("this domain keeps no protection events");
        }
    }

    /// <summary>GET /attestation?nonce=HEX: a quote signed with the host's key (docs/security.md, the quote format).</summary>
    public AttestationQuote Attest(string? nonce)
    {
        if (nonce is null || !KernelProtector.IsValidNonce(nonce))
        {
            throw ApiException.BadRequest("nonce is required: 1 to 64 bytes in hex (?nonce=HEX)");
        }

        KernelProtector protector;
        lock (_lock)
        {
            RequireLive("attestation");
            protector = RequireProtector();
        }

        try
        {
            using AttestationKey key = AttestationKey.LoadOrCreate(AttestationKeyDirectory);
            return protector.Quote(nonce, key);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new ApiException(500, $"the host's attestation key in {AttestationKeyDirectory}: {e.Message}");
        }
    }

    private KernelProtector RequireProtector() =>
        _machine!.Protector ?? throw ApiException.BadRequest("this domain runs without kernel protection (start it with sharpvisor-protection / --protect)");
}
