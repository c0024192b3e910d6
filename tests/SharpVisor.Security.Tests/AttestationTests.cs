using System.Text;
using System.Text.Json.Nodes;

namespace SharpVisor.Security.Tests;

public sealed class AttestationTests
{
    private static readonly KernelImageLayout s_layout = KernelImageLayout.Parse("synthetic", SyntheticKernel.Build());

    [Fact]
    public void AQuoteVerifiesWithTheRightNonceKeyAndKernelOnly()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel,cr-pin,msr-pin"), s_layout, guest.Memory, null);
        protector.OnUserModeEntered(guest);
        using var key = AttestationKey.CreateEphemeral();
        using var other = AttestationKey.CreateEphemeral();
        AttestationQuote quote = AttestationQuote.Parse(protector.Quote("00c0ffee", key).ToJson());

        QuotePayload? ok = quote.Verify(key.PublicKeyPem, "00C0FFEE", s_layout.KernelDigest, out string reason);
        Assert.True(ok is not null, reason);
        Assert.Equal("kernel,cr-pin,msr-pin,mode=enforce", ok.Policy);
        Assert.Equal(protector.Golden!.Digest, ok.GoldenMeasurement);
        Assert.Equal(ok.GoldenMeasurement, ok.CurrentMeasurement);
        Assert.Equal(0, ok.Violations);
        Assert.Equal(key.KeyId, ok.KeyId);

        Assert.Null(quote.Verify(key.PublicKeyPem, "00c0fffe", null, out reason));
        Assert.Contains("nonce", reason);
        Assert.Null(quote.Verify(other.PublicKeyPem, "00c0ffee", null, out reason));
        Assert.Contains("signature does not verify", reason);
        Assert.Null(quote.Verify(key.PublicKeyPem, "00c0ffee", new string('0', 64), out reason));
        Assert.Contains("kernel digest", reason);
    }

    [Theory]
    [InlineData("violations", "0")]
    [InlineData("current_measurement", "\"0000\"")]
    [InlineData("policy", "\"cr-pin,mode=log\"")]
    [InlineData("nonce", "\"1234\"")]
    public void ATamperedFieldBreaksTheSignature(string field, string json)
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel"), s_layout, guest.Memory, null);
        protector.OnUserModeEntered(guest);
        protector.Map.Report(Machine.Protection.ProtectionViolationKind.KernelWrite, 0, 1, 2, 3); // so "violations" changes
        using var key = AttestationKey.CreateEphemeral();
        AttestationQuote quote = protector.Quote("1234", key);

        JsonNode payload = JsonNode.Parse(Convert.FromBase64String(quote.Payload))!;
        payload[field] = JsonNode.Parse(json);
        var tampered = quote with { Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(payload.ToJsonString())) };
        Assert.Null(tampered.Verify(key.PublicKeyPem, null, null, out string reason));
        Assert.Contains("signature does not verify", reason);
    }

    [Fact]
    public void AQuoteOfAChangedKernelDoesNotVerify()
    {
        using var guest = new FakeKernelGuest(rodataWritable: false);
        using var protector = new KernelProtector(ProtectionPolicy.Parse("kernel"), s_layout, guest.Memory, null);
        protector.OnUserModeEntered(guest);
        guest.Memory.Write<byte>(FakeKernelGuest.RodataFrame, 1);
        using var key = AttestationKey.CreateEphemeral();
        Assert.Null(protector.Quote("ab", key).Verify(key.PublicKeyPem, "ab", null, out string reason));
        Assert.Contains("differs from the golden", reason);
    }

    [Fact]
    public void TheHostKeyIsCreated0600OnceAndReused()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"attest-{Guid.NewGuid():N}");
        try
        {
            string id;
            using (var key = AttestationKey.LoadOrCreate(dir))
            {
                id = key.KeyId;
            }

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir, AttestationKey.PrivateKeyFile)));
            using var again = AttestationKey.LoadOrCreate(dir);
            Assert.Equal(id, again.KeyId);
            Assert.Equal(again.PublicKeyPem.Trim(), File.ReadAllText(Path.Combine(dir, AttestationKey.PublicKeyFile)).Trim());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
