namespace SharpVisor.Kvm;

/// <summary>
/// Host detection for choosing an accelerator: does /dev/kvm exist and open, and is it real
/// hardware virtualization or PVM (a nested KVM without VT-x/AMD-V underneath)?
/// </summary>
public static class KvmHost
{
    public const string PvmExplanation =
        "PVM: nested KVM that runs guest kernel code through an instruction emulator at ~1 µs/instruction; " +
        "Linux guests crawl and stop on xrstor/int3/cmpxchg16b; tiny guests run fine";

    /// <summary>Probes the host. The paths are parameters so tests can point them at fakes.</summary>
    public static KvmHostStatus Probe(
        string devicePath = KvmSystem.DefaultDevicePath,
        string sysModuleRoot = "/sys/module",
        string cpuInfoPath = "/proc/cpuinfo")
    {
        try
        {
            using KvmSystem system = KvmSystem.Open(devicePath);
        }
        catch (KvmUnavailableException e)
        {
            return new KvmHostStatus(false, false, e.Message);
        }

        if (IsPvm(sysModuleRoot, cpuInfoPath, out string why))
        {
            return new KvmHostStatus(true, true, $"{devicePath} is PVM-backed ({why}). {PvmExplanation}");
        }

        return new KvmHostStatus(true, false, $"{devicePath} is hardware-backed (VT-x/AMD-V)");
    }

    /// <summary>
    /// PVM when the kvm_pvm module is loaded, or when the CPU flags show neither vmx (Intel VT-x)
    /// nor svm (AMD-V): KVM can then only be a software-assisted nested implementation.
    /// </summary>
    public static bool IsPvm(string sysModuleRoot, string cpuInfoPath, out string reason)
    {
        if (Directory.Exists(Path.Combine(sysModuleRoot, "kvm_pvm")))
        {
            reason = "module kvm_pvm is loaded";
            return true;
        }

        string? flags = ReadCpuFlags(cpuInfoPath);
        if (flags is null)
        {
            reason = $"{cpuInfoPath} has no CPU flags";
            return false;
        }

        string[] words = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (!words.Contains("vmx") && !words.Contains("svm"))
        {
            reason = "the CPU has neither the vmx nor the svm flag";
            return true;
        }

        reason = "";
        return false;
    }

    private static string? ReadCpuFlags(string cpuInfoPath)
    {
        try
        {
            foreach (string line in File.ReadLines(cpuInfoPath))
            {
                int colon = line.IndexOf(':');
                if (colon > 0 && line.AsSpan(0, colon).Trim() is "flags")
                {
                    return line[(colon + 1)..];
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }
}
