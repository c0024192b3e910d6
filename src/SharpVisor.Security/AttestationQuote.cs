using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpVisor.Security;

/// <summary>
/// A signed quote: <c>{"payload":"BASE64(JSON)","signature":"BASE64(r||s)"}</c>, where the
/// signature is ECDSA P-256 / SHA-256 over the payload's bytes (IEEE P1363 form). Verifiers check
/// the signature over the bytes first and only then read the fields.
/// </summary>
public sealed record AttestationQuote(string Payload, string Signature)
{
    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    [JsonPropertyName("payload")]
    public string Payload { get; init; } = Payload;

    [JsonPropertyName("signature")]
    public string Signature { get; init; } = Signature;

    public static AttestationQuote Create(QuotePayload payload, AttestationKey key)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(payload, s_json);
        return new AttestationQuote(Convert.ToBase64String(bytes), Convert.ToBase64String(key.Sign(bytes)));
    }

    public string ToJson() => JsonSerializer.Serialize(this);

    /// <summary>Parses a quote file; throws <see cref="FormatException"/> with a one-line reason.</summary>
    public static AttestationQuote Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<AttestationQuote>(json) is { Payload: not null, Signature: not null } quote
                ? quote
                : throw new FormatException("not a quote: payload or signature missing");
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a quote: {e.Message}");
        }
    }

    /// <summary>
    /// Checks the signature with <paramref name="publicKeyPem"/>, then the fields against what the
    /// verifier expects. Returns the payload when every check passes, else null with the reason.
    /// </summary>
    public QuotePayload? Verify(string publicKeyPem, string? expectedNonce, string? expectedKernelDigest, out string reason)
    {
        byte[] payload;
        byte[] signature;
        try
        {
            payload = Convert.FromBase64String(Payload);
            signature = Convert.FromBase64String(Signature);
        }
        catch (FormatException)
        {
            reason = "payload or signature is not base64";
            return null;
        }

        using (var key = ECDsa.Create())
        {
            try
            {
                key.ImportFromPem(publicKeyPem);
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException)
            {
                reason = $"the public key is not a PEM ECDSA key: {e.Message}";
                return null;
            }

            if (key.KeySize != 256 || !key.VerifyData(payload, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
            {
                reason = "signature does not verify with this key (wrong key, or the quote was altered)";
                return null;
            }
        }

        QuotePayload? fields;
        try
        {
            fields = JsonSerializer.Deserialize<QuotePayload>(payload, s_json);
        }
        catch (JsonException e)
        {
            reason = $"signed payload is not a quote: {e.Message}";
            return null;
        }

        if (fields is null || fields.Format != QuotePayload.CurrentFormat)
        {
            reason = $"signed payload is not a {QuotePayload.CurrentFormat} quote";
            return null;
        }

        if (expectedNonce is not null && !string.Equals(fields.Nonce, expectedNonce, StringComparison.OrdinalIgnoreCase))
        {
            reason = $"nonce {fields.Nonce} is not the expected {expectedNonce} (a replayed quote?)";
            return null;
        }

        if (expectedKernelDigest is not null && !string.Equals(fields.KernelDigest, expectedKernelDigest, StringComparison.OrdinalIgnoreCase))
        {
            reason = $"kernel digest {fields.KernelDigest} is not the expected {expectedKernelDigest}";
            return null;
        }

        if (!fields.Locked || fields.GoldenMeasurement is null || fields.CurrentMeasurement != fields.GoldenMeasurement)
        {
            reason = fields.Locked ? "the current measurement differs from the golden one" : "the kernel was not locked";
            return null;
        }

        reason = "ok";
        return fields;
    }

    /// <summary>A verified payload as text, one field a line (for the verify command).</summary>
    public static string Describe(QuotePayload p) => new StringBuilder()
        .AppendLine($"kernel        {p.KernelDigest}")
        .AppendLine($"policy        {p.Policy}")
        .AppendLine($"locked        {p.Locked}")
        .AppendLine($"golden        {p.GoldenMeasurement}")
        .AppendLine($"current       {p.CurrentMeasurement}")
        .AppendLine($"violations    {p.Violations}")
        .AppendLine($"nonce         {p.Nonce}")
        .AppendLine($"timestamp     {p.Timestamp:O}")
        .Append($"key           {p.KeyId}")
        .ToString();
}
