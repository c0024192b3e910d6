namespace SharpVisor.Host.Firecracker;

/// <summary>
/// A command line Firecracker's arg parser refuses. <see cref="Variant"/> is the Rust value's
/// Debug form (UnexpectedArgument("x")), which Firecracker prints as "Error: ParseArguments(...)";
/// <see cref="Message"/> is its Display form, which it logs.
/// </summary>
public sealed class FirecrackerArgumentException : Exception
{
    public FirecrackerArgumentException(string variant, string message)
        : base(message)
    {
        Variant = variant;
    }

    public string Variant { get; }
}
