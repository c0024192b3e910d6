namespace SharpVisor.Cli;

/// <summary>What <see cref="ProgressPolicy"/> decided for one interval.</summary>
public enum ProgressVerdict
{
    /// <summary>Say nothing: the guest spoke, or the console is the guest's and nothing is wrong.</summary>
    Quiet,

    /// <summary>Say that the guest is running but silent (before its first byte, or not interactive, or verbose).</summary>
    Silent,

    /// <summary>Say that a vCPU has run without halting for several intervals while the guest was silent.</summary>
    Stuck,
}
