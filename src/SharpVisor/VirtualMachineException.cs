namespace SharpVisor;

/// <summary>The machine could not be built or driven as asked; the message is one line that says why.</summary>
public sealed class VirtualMachineException : Exception
{
    /// <summary>An error with a one-line reason.</summary>
    public VirtualMachineException(string message)
        : base(message)
    {
    }

    /// <summary>An error with a one-line reason and the failure behind it.</summary>
    public VirtualMachineException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
