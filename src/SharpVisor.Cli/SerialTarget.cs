namespace SharpVisor.Cli;

/// <summary>Where the guest's serial console goes: the terminal, a file, or nowhere.</summary>
public sealed record SerialTarget(SerialTargetKind Kind, string? Path = null)
{
    public static SerialTarget Parse(string text)
    {
        if (text == "stdio")
        {
            return new SerialTarget(SerialTargetKind.Stdio);
        }

        if (text == "none")
        {
            return new SerialTarget(SerialTargetKind.None);
        }

        if (text.StartsWith("file:", StringComparison.Ordinal) && text.Length > "file:".Length)
        {
            return new SerialTarget(SerialTargetKind.File, text["file:".Length..]);
        }

        throw new CliException($"--serial '{text}': expected stdio, none or file:PATH");
    }
}
