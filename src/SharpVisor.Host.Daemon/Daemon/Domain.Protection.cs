using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Daemon;

/// <summary>Kernel protection through the domain's VMM: status, raising the policy, attestation (docs/security.md).</summary>
public sealed partial class Domain
{
    public async Task<ProtectionStatus> ReadProtectionAsync()
    {
        ProtectionStatus? status = null;
        await WithOperationAsync(DomainOperation.Protection, async vmm => status = await vmm.Client.GetProtectionAsync(CancellationToken.None));
        return status!;
    }

    public Task RaiseProtectionAsync(string policy) =>
        WithOperationAsync(DomainOperation.Protection, vmm => vmm.Client.SetProtectionAsync(policy, CancellationToken.None));

    public async Task<string> AttestAsync(string nonce)
    {
        string? quote = null;
        await WithOperationAsync(DomainOperation.Protection, async vmm => quote = await vmm.Client.AttestAsync(nonce, CancellationToken.None));
        return quote!;
    }
}
