namespace SharpVisor.Security;

/// <summary>
/// One measurement of a locked kernel: SHA-256 digests (lower-case hex) of the protected kernel
/// text, the read-only data, the IDT and the pinned register values, and of all four together.
/// </summary>
public sealed record Measurement(DateTimeOffset Time, string Text, string ReadOnlyData, string Idt, string Registers, string Digest, long BytesHashed)
{
    /// <summary>How long hashing took.</summary>
    public TimeSpan Elapsed { get; init; }
}
