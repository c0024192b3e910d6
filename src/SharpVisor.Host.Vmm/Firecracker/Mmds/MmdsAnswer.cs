namespace SharpVisor.Host.Firecracker.Mmds;

/// <summary>An HTTP answer of the MMDS to the guest.</summary>
public sealed record MmdsAnswer(int StatusCode, string ContentType, string Body)
{
    public static MmdsAnswer Text(int statusCode, string body) => new(statusCode, "text/plain", body);
}
