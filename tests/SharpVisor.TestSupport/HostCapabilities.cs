namespace SharpVisor.TestSupport;

/// <summary>What this host offers tests: /dev/kvm, root.</summary>
public static class HostCapabilities
{
    private static readonly Lazy<string?> s_kvmUnavailableReason = new(ProbeKvm);

    /// <summary>Null when /dev/kvm can be opened read-write; else why not.</summary>
    public static string? KvmUnavailableReason => s_kvmUnavailableReason.Value;

    public static bool IsRoot => Environment.UserName == "root";

    private static string? ProbeKvm()
    {
        if (!File.Exists("/dev/kvm"))
        {
            return "/dev/kvm does not exist on this host (no KVM module loaded)";
        }

        try
        {
            using FileStream stream = new("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return null;
        }
        catch (Exception e)
        {
            return $"/dev/kvm cannot be opened read-write: {e.Message}";
        }
    }
}
