using SharpVisor.Host.Vmm;

namespace SharpVisor.Cli;

/// <summary>
/// Parses the device options of <c>sharpvisor run</c>:
/// <c>--disk PATH[,ro][,id=ID]</c> and <c>--net tap[=NAME][,mac=MAC]</c>. Whether the files
/// and interfaces exist is checked when the machine is built.
/// </summary>
public static class DeviceOptions
{
    public static DiskConfiguration ParseDisk(string text)
    {
        string[] parts = text.Split(',');
        string path = parts[0];
        if (path.Length == 0)
        {
            throw new CliException($"--disk '{text}': no image path (use --disk PATH[,ro][,id=ID])");
        }

        bool readOnly = false;
        string? id = null;
        foreach (string part in parts.Skip(1))
        {
            if (part is "ro" or "readonly")
            {
                readOnly = true;
            }
            else if (part == "rw")
            {
                readOnly = false;
            }
            else if (part.StartsWith("id=", StringComparison.Ordinal) && part.Length > 3)
            {
                id = part[3..];
            }
            else
            {
                throw new CliException($"--disk '{text}': unknown option '{part}' (use --disk PATH[,ro][,id=ID])");
            }
        }

        return new DiskConfiguration(path, readOnly, id);
    }

    public static NetworkInterfaceConfiguration ParseNetwork(string text)
    {
        string[] parts = text.Split(',');
        string backend = parts[0];
        string? tap;
        if (backend == "tap")
        {
            tap = null;
        }
        else if (backend.StartsWith("tap=", StringComparison.Ordinal) && backend.Length > 4)
        {
            tap = backend[4..];
        }
        else
        {
            throw new CliException($"--net '{text}': only TAP networking is supported (use --net tap[=NAME][,mac=MAC])");
        }

        MacAddress? mac = null;
        foreach (string part in parts.Skip(1))
        {
            if (part.StartsWith("mac=", StringComparison.Ordinal))
            {
                try
                {
                    mac = MacAddress.Parse(part[4..]);
                }
                catch (ArgumentException e)
                {
                    throw new CliException($"--net '{text}': {e.Message}");
                }
            }
            else
            {
                throw new CliException($"--net '{text}': unknown option '{part}' (use --net tap[=NAME][,mac=MAC])");
            }
        }

        return new NetworkInterfaceConfiguration { TapName = tap, Mac = mac };
    }
}
