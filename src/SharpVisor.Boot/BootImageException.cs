namespace SharpVisor.Boot;

/// <summary>
/// A kernel, initrd or module that cannot be booted. The message is one line that names
/// the file and the problem, ready for the command line to print as is.
/// </summary>
public sealed class BootImageException : Exception
{
    public BootImageException(string filePath, string problem)
        : base($"{filePath}: {problem}")
    {
        FilePath = filePath;
        Problem = problem;
    }

    public BootImageException(string filePath, string problem, Exception inner)
        : base($"{filePath}: {problem}", inner)
    {
        FilePath = filePath;
        Problem = problem;
    }

    public string FilePath { get; }

    public string Problem { get; }
}
