using System.Net;
using System.Text.Json;
using SharpVisor.Host.Tests.Fakes;
using SharpVisor.Machine.Protection;
using SharpVisor.Security;

namespace SharpVisor.Host.Tests;

/// <summary>
/// Kernel protection on the VMM's API (docs/security.md) over a fake machine with a real
/// KernelProtector: the policy before boot, raising it on the running domain (lowering refused),
/// the status with violations and recent events, the counters, and GET /attestation quotes that
/// verify with the host key and nonce only.
/// </summary>
public sealed class VmmProtectionApiTests
{
    [Fact]
    public async Task PolicyStatusRaiseAndAttestationWorkAndLoweringIsRefused()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        string keys = vmm.Directory.File("keys");
        vmm.Server.Controller.AttestationKeyDirectory = keys;

        // Before boot: a bad policy is refused; a good one shows in the status and in GET /vm/config.
        VmmTestServer.Response bad = await vmm.PutAsync("/sharpvisor/protection", """{"policy": "kernel,nx"}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Contains("unknown item 'nx'", bad.FaultMessage);
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/sharpvisor/protection", """{"policy": "cr-pin,mode=log"}""")).Status);
        using (JsonDocument config = JsonDocument.Parse((await vmm.GetAsync("/vm/config")).Body))
        {
            Assert.Equal("cr-pin,mode=log", config.RootElement.GetProperty("sharpvisor-protection").GetProperty("policy").GetString());
        }

        await vmm.StartMachineAsync();
        FakeDomainMachine machine = vmm.Factory.Last!;
        KernelProtector protector = Assert.IsType<KernelProtector>(machine.Protector);
        Assert.Equal("cr-pin,mode=log", protector.Policy.ToString());

        // Raised before the lock: enforce and msr-pin; then locked, and a violation reported.
        Assert.Equal(HttpStatusCode.NoContent, (await vmm.PutAsync("/sharpvisor/protection", """{"policy": "cr-pin,msr-pin"}""")).Status);
        Assert.True(protector.Map.Enforce);
        protector.OnUserModeEntered(new LockContext());
        Assert.True(protector.Map.IsLocked);
        Assert.True(protector.Map.Report(ProtectionViolationKind.ModelSpecificRegister, 0, 0xFFFF_FFFF_8100_0000, 0xC000_0082, 0x1234));

        VmmTestServer.Response lowered = await vmm.PutAsync("/sharpvisor/protection", """{"policy": "cr-pin,msr-pin,mode=log"}""");
        Assert.Equal(HttpStatusCode.BadRequest, lowered.Status);
        Assert.Contains("lowering a running domain's protection is refused", lowered.FaultMessage);
        VmmTestServer.Response afterLock = await vmm.PutAsync("/sharpvisor/protection", """{"policy": "kernel,cr-pin,msr-pin"}""");
        Assert.Equal(HttpStatusCode.BadRequest, afterLock.Status);
        Assert.Contains("locked already", afterLock.FaultMessage);

        using (JsonDocument status = JsonDocument.Parse((await vmm.GetAsync("/sharpvisor/protection")).Body))
        {
            JsonElement root = status.RootElement;
            Assert.Equal("cr-pin,msr-pin,mode=enforce", root.GetProperty("policy").GetString());
            Assert.True(root.GetProperty("locked").GetBoolean());
            Assert.Equal(1, root.GetProperty("violations").GetProperty("msr-pin").GetInt64());
            JsonElement recent = Assert.Single(root.GetProperty("recent_violations").EnumerateArray());
            Assert.Equal("msr-pin", recent.GetProperty("kind").GetString());
            Assert.Equal("0xffffffff81000000", recent.GetProperty("rip").GetString());
            Assert.Equal("0xc0000082", recent.GetProperty("target").GetString());
            Assert.True(recent.GetProperty("blocked").GetBoolean());
        }

        using (JsonDocument counters = JsonDocument.Parse((await vmm.GetAsync("/sharpvisor/counters")).Body))
        {
            Assert.Equal(1, counters.RootElement.GetProperty("protection_violations").GetProperty("msr-pin").GetInt64());
        }

        // A quote for the nonce, signed with the host key the VMM created 0600.
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.GetAsync("/attestation")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.GetAsync("/attestation?nonce=xyz")).Status);
        VmmTestServer.Response quoted = await vmm.GetAsync("/attestation?nonce=00FF");
        Assert.Equal(HttpStatusCode.OK, quoted.Status);
        AttestationQuote quote = AttestationQuote.Parse(quoted.Body);
        string publicKey = File.ReadAllText(Path.Combine(keys, AttestationKey.PublicKeyFile));
        QuotePayload payload = Assert.IsType<QuotePayload>(quote.Verify(publicKey, "00ff", null, out string reason));
        Assert.Equal("ok", reason);
        Assert.Equal("cr-pin,msr-pin,mode=enforce", payload.Policy);
        Assert.Equal(1, payload.Violations);
        Assert.Null(quote.Verify(publicKey, "00fe", null, out string wrongNonce));
        Assert.Contains("nonce", wrongNonce);
        using AttestationKey other = AttestationKey.CreateEphemeral();
        Assert.Null(quote.Verify(other.PublicKeyPem, "00ff", null, out _));
    }

    [Fact]
    public async Task AnUnprotectedDomainHasNoAttestationAndCannotGainProtection()
    {
        await using VmmTestServer vmm = await VmmTestServer.StartAsync();
        await vmm.StartMachineAsync();

        VmmTestServer.Response quote = await vmm.GetAsync("/attestation?nonce=01");
        Assert.Equal(HttpStatusCode.BadRequest, quote.Status);
        Assert.Contains("without kernel protection", quote.FaultMessage);
        Assert.Equal(HttpStatusCode.BadRequest, (await vmm.PutAsync("/sharpvisor/protection", """{"policy": "cr-pin"}""")).Status);
    }

    /// <summary>A vCPU with CR0.WP and EFER.NXE set, for a lock without kernel ranges (pins only).</summary>
    private sealed class LockContext : IProtectionLockContext
    {
        public int VcpuId => 0;

        public ulong Cr0 => (1UL << 31) | (1UL << 16) | 1;

        public ulong Cr3 => 0x1000;

        public ulong Cr4 => 1UL << 20;

        public ulong Efer => (1UL << 11) | (1UL << 10) | (1UL << 8);

        public ulong Lstar => 0xFFFF_FFFF_8160_0080;

        public ulong SysenterEip => 0xFFFF_FFFF_8160_17B0;

        public ulong IdtBase => 0xFFFF_FE00_0000_0000;

        public ushort IdtLimit => 0xFFF;

        public bool TryTranslate(ulong linear, out ulong physicalAddress, out bool writable)
        {
            physicalAddress = 0;
            writable = false;
            return false;
        }
    }
}
