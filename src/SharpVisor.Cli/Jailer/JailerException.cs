using SharpVisor.Interop;

namespace SharpVisor.Cli.Jailer;

/// <summary>
/// A refusal or failure of the jailer, worded as Firecracker's jailer words it (its JailerError's
/// Display form, <see cref="Exception.Message"/>); <see cref="Variant"/> is the Rust value's
/// Debug form for the "Error: ..." line Rust's main prints after it.
/// </summary>
public sealed class JailerException : Exception
{
    public JailerException(string variant, string message)
        : base(message)
    {
        Variant = variant;
    }

    public string Variant { get; }

    /// <summary>Rust's io::Error Display for an OS error: "No such file or directory (os error 2)".</summary>
    public static string OsError(int errno) => $"{LibC.Strerror(errno)} (os error {errno})";

    /// <summary>An io::Error from a failed .NET file operation, with the errno it carries when it has one.</summary>
    public static string IoError(Exception error) => error switch
    {
        UnauthorizedAccessException => OsError(LibC.EACCES),
        FileNotFoundException or DirectoryNotFoundException => OsError(LibC.ENOENT),
        _ => error.Message,
    };

    /// <summary>A JailerError whose payload is a path and an OS error.</summary>
    public static JailerException Os(string variant, string display, int errno) =>
        new($"{variant}(.., Os {{ code: {errno} }})", $"{display}: {OsError(errno)}");
}
