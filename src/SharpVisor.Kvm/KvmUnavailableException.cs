using SharpVisor.Interop;

namespace SharpVisor.Kvm;

/// <summary>KVM cannot be used on this host; the message is one line that says why and what to do.</summary>
public sealed class KvmUnavailableException : Exception
{
    public KvmUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>The error for a failed open() of the KVM device, by errno.</summary>
    public static KvmUnavailableException ForOpenError(string devicePath, int errno) => errno switch
    {
        LibC.ENOENT => new($"{devicePath} not found: load the kvm_intel or kvm_amd module"),
        LibC.EACCES or LibC.EPERM => new($"no permission to open {devicePath}: add your user to the kvm group or run as root"),
        _ => new($"cannot open {devicePath}: {LibC.Strerror(errno)} (errno {errno})"),
    };
}
