namespace SharpVisor.Host.Xl;

/// <summary>One entry of xl.cfg's <c>disk</c> list: a raw image, the guest's name for it (xvda, ...), and whether the guest may write.</summary>
public sealed record XlDisk(string Path, string Vdev, bool ReadOnly)
{
    /// <summary>xl's <c>backend=DOMAIN</c>: the driver domain that serves the vbd (docs/xen.md, "Driver domains"); null for Dom0's blkback.</summary>
    public string? Backend { get; init; }

    /// <summary>
    /// The forms xl-disk-configuration(5) gives: positional <c>TARGET,FORMAT,VDEV,ACCESS</c>,
    /// keyed <c>target=..., vdev=..., access=..., format=raw</c> (target last), and the legacy
    /// <c>file:PATH,VDEV,ACCESS</c> (also <c>phy:</c> and <c>tap:aio:</c> prefixes).
    /// </summary>
    public static XlDisk Parse(string spec, int index)
    {
        string? target = null, format = null, vdev = null, access = null, backend = null;
        string[] all = spec.Split(',', StringSplitOptions.TrimEntries);

        // backend= may follow any form, as in xl-disk-configuration(5).
        string[] parts = all.Where(p => !p.StartsWith("backend=", StringComparison.Ordinal)).ToArray();
        foreach (string part in all.Where(p => p.StartsWith("backend=", StringComparison.Ordinal)))
        {
            backend = part["backend=".Length..];
            if (!System.Text.RegularExpressions.Regex.IsMatch(backend, "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"))
            {
                throw Bad(spec, $"backend '{backend}' is not a domain name");
            }
        }

        bool legacy = parts[0].StartsWith("file:", StringComparison.Ordinal) || parts[0].StartsWith("phy:", StringComparison.Ordinal) ||
            parts[0].StartsWith("tap:", StringComparison.Ordinal);
        if (legacy)
        {
            target = parts[0][(parts[0].LastIndexOf(':') + 1)..];
            vdev = parts.Length > 1 ? parts[1] : null;
            access = parts.Length > 2 ? parts[2] : null;
            if (parts.Length > 3)
            {
                throw Bad(spec, "the legacy form is PREFIX:PATH,VDEV,ACCESS");
            }
        }
        else
        {
            int position = 0;
            foreach (string part in parts)
            {
                int equals = part.IndexOf('=');
                if (equals > 0)
                {
                    string key = part[..equals].Trim();
                    string value = part[(equals + 1)..].Trim();
                    switch (key)
                    {
                        case "target": target = value; break;
                        case "format": format = value; break;
                        case "vdev": vdev = value; break;
                        case "access": access = value; break;
                        case "devtype" when value == "disk": break;
                        case "backendtype" when value is "qdisk" or "tap": break;
                        default: throw Bad(spec, $"'{key}={value}' is not supported (target, format=raw, vdev, access, devtype=disk)");
                    }
                }
                else
                {
                    switch (position++)
                    {
                        case 0: target = part; break;
                        case 1: format = part.Length == 0 ? null : part; break;
                        case 2: vdev = part; break;
                        case 3: access = part; break;
                        default: throw Bad(spec, "the positional form is TARGET,FORMAT,VDEV,ACCESS");
                    }
                }
            }
        }

        if (string.IsNullOrEmpty(target))
        {
            throw Bad(spec, "no image path (target)");
        }

        if (format is not null and not "raw")
        {
            throw Bad(spec, $"format '{format}' is not supported: SharpVisor serves raw images");
        }

        vdev = string.IsNullOrEmpty(vdev) ? $"xvd{(char)('a' + index)}" : vdev;
        if (!System.Text.RegularExpressions.Regex.IsMatch(vdev, "^(xvd|sd|hd)[a-z]{1,2}$"))
        {
            throw Bad(spec, $"vdev '{vdev}' is not a disk name like xvda");
        }

        bool readOnly = access switch
        {
            null or "" or "w" or "rw" => false,
            "r" or "ro" => true,
            _ => throw Bad(spec, $"access '{access}' is not r, ro, w or rw"),
        };
        return new XlDisk(target, vdev, readOnly) { Backend = backend };
    }

    private static XlConfigException Bad(string spec, string why) => new($"disk '{spec}': {why}");
}
