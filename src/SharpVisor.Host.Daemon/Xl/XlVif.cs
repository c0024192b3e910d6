namespace SharpVisor.Host.Xl;

/// <summary>
/// One entry of xl.cfg's <c>vif</c> list (xl-network-configuration(5)): the guest's MAC and the
/// host TAP interface the back end uses (<c>vifname</c>, or <c>tap</c>). SharpVisor attaches to
/// an existing TAP and runs no hotplug scripts, so <c>bridge</c> and <c>script</c> are refused.
/// </summary>
public sealed record XlVif(string TapName, string? Mac)
{
    public static XlVif Parse(string spec)
    {
        string? tap = null, mac = null;
        foreach (string part in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = part.IndexOf('=');
            string key = equals > 0 ? part[..equals].Trim() : part;
            string value = equals > 0 ? part[(equals + 1)..].Trim() : "";
            switch (key)
            {
                case "mac": mac = value; break;
                case "vifname" or "tap": tap = value; break;
                case "type" when value is "vif" or "ioemu": break;
                case "bridge" or "script":
                    throw new XlConfigException($"vif '{spec}': '{key}' is not supported: SharpVisor runs no hotplug scripts; create the TAP (in your bridge) and name it with vifname=");
                default:
                    throw new XlConfigException($"vif '{spec}': '{part}' is not supported (mac=, vifname=)");
            }
        }

        if (string.IsNullOrEmpty(tap))
        {
            throw new XlConfigException($"vif '{spec}': name the host's TAP interface with vifname=");
        }

        return new XlVif(tap, string.IsNullOrEmpty(mac) ? null : mac);
    }
}
