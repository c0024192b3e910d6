namespace SharpVisor.Security;

/// <summary>
/// What a quote attests (docs/security.md, "Quote format"): the fields are serialized in this
/// order as compact JSON, and the signature covers exactly those bytes.
/// </summary>
public sealed record QuotePayload
{
    public const string CurrentFormat = "sharpvisor-quote-v1";

    public string Format { get; init; } = CurrentFormat;

    /// <summary>SHA-256 of the kernel image file the domain booted.</summary>
    public required string KernelDigest { get; init; }

    public required string Policy { get; init; }

    public required bool Locked { get; init; }

    /// <summary>The measurement taken at lock; null before.</summary>
    public string? GoldenMeasurement { get; init; }

    /// <summary>A measurement taken for this quote; null before the lock.</summary>
    public string? CurrentMeasurement { get; init; }

    public required long Violations { get; init; }

    /// <summary>The verifier's challenge, lower-case hex.</summary>
    public required string Nonce { get; init; }

    /// <summary>When the quote was made (UTC, ISO 8601).</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>SHA-256 of the signing key's SPKI (which key to check with).</summary>
    public required string KeyId { get; init; }
}
