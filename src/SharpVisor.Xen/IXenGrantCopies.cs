namespace SharpVisor.Xen;

/// <summary>
/// A back end's grant copies with one front end: from and into the pages it granted the back
/// end's domain. A refusal throws <see cref="GrantTableException"/> (the request fails, not the back end).
/// </summary>
internal interface IXenGrantCopies
{
    void CopyFrom(uint reference, int offset, Span<byte> destination);

    void CopyTo(uint reference, int offset, ReadOnlySpan<byte> source);
}
