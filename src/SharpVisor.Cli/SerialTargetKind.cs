namespace SharpVisor.Cli;

public enum SerialTargetKind
{
    Stdio,
    File,
    None,
}
