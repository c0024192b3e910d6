using System.Globalization;
using System.Text;
using SharpVisor.Host.Domains;

namespace SharpVisor.Host.Daemon;

/// <summary>Writes domain figures in the Prometheus text exposition format (version 0.0.4).</summary>
public static class MetricsFormatter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Format(IReadOnlyList<DomainStats> domains)
    {
        var text = new StringBuilder();
        Family(text, "sharpvisor_domains", "gauge", "Domains known to the daemon.");
        text.Append("sharpvisor_domains ").Append(domains.Count).Append('\n');

        Family(text, "sharpvisor_domain_info", "gauge", "One series per domain with its state.");
        foreach (DomainStats d in domains)
        {
            Sample(text, "sharpvisor_domain_info", Labels(d, ("state", d.State)), 1);
        }

        Family(text, "sharpvisor_domain_vcpus", "gauge", "vCPUs of the domain.");
        foreach (DomainStats d in domains)
        {
            Sample(text, "sharpvisor_domain_vcpus", Labels(d), d.Vcpus);
        }

        Family(text, "sharpvisor_domain_memory_bytes", "gauge", "Guest memory size.");
        foreach (DomainStats d in domains)
        {
            Sample(text, "sharpvisor_domain_memory_bytes", Labels(d), d.MemoryMib << 20);
        }

        Family(text, "sharpvisor_domain_cpu_seconds_total", "counter", "CPU time used by the domain's VMM process (all threads).");
        foreach (DomainStats d in domains.Where(d => d.CpuSeconds is not null))
        {
            Sample(text, "sharpvisor_domain_cpu_seconds_total", Labels(d), d.CpuSeconds!.Value);
        }

        Family(text, "sharpvisor_domain_resident_bytes", "gauge", "Resident memory of the domain's VMM process.");
        foreach (DomainStats d in domains.Where(d => d.ResidentBytes is not null))
        {
            Sample(text, "sharpvisor_domain_resident_bytes", Labels(d), d.ResidentBytes!.Value);
        }

        Family(text, "sharpvisor_domain_uptime_seconds", "gauge", "Seconds since the domain's VMM started.");
        foreach (DomainStats d in domains.Where(d => d.UptimeSeconds is not null))
        {
            Sample(text, "sharpvisor_domain_uptime_seconds", Labels(d), d.UptimeSeconds!.Value);
        }

        Family(text, "sharpvisor_domain_exits_total", "counter", "vCPU exits to the VMM, by reason.");
        foreach (DomainStats d in domains)
        {
            foreach ((string reason, long count) in d.Exits.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                Sample(text, "sharpvisor_domain_exits_total", Labels(d, ("reason", reason)), count);
            }
        }

        Family(text, "sharpvisor_protection_violations_total", "counter", "Kernel protection violations of protected domains, by kind (docs/security.md).");
        foreach (DomainStats d in domains.Where(d => d.ProtectionViolations is not null))
        {
            foreach ((string kind, long count) in d.ProtectionViolations!.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                Sample(text, "sharpvisor_protection_violations_total", Labels(d, ("kind", kind)), count);
            }
        }

        Family(text, "sharpvisor_domain_device_requests_total", "counter", "Device requests, by device and direction (read: to the guest).");
        foreach (DomainStats d in domains)
        {
            foreach (DeviceCounters device in d.Devices)
            {
                Sample(text, "sharpvisor_domain_device_requests_total", Labels(d, ("device", device.Name), ("direction", "read")), device.ReadRequests);
                Sample(text, "sharpvisor_domain_device_requests_total", Labels(d, ("device", device.Name), ("direction", "write")), device.WriteRequests);
            }
        }

        Family(text, "sharpvisor_domain_device_bytes_total", "counter", "Device bytes, by device and direction (read: to the guest).");
        foreach (DomainStats d in domains)
        {
            foreach (DeviceCounters device in d.Devices)
            {
                Sample(text, "sharpvisor_domain_device_bytes_total", Labels(d, ("device", device.Name), ("direction", "read")), device.ReadBytes);
                Sample(text, "sharpvisor_domain_device_bytes_total", Labels(d, ("device", device.Name), ("direction", "write")), device.WriteBytes);
            }
        }

        Family(text, "sharpvisor_domain_balloon_target_bytes", "gauge", "Memory the balloon is asked to hold.");
        foreach (DomainStats d in domains.Where(d => d.BalloonTargetMib is not null))
        {
            Sample(text, "sharpvisor_domain_balloon_target_bytes", Labels(d), d.BalloonTargetMib!.Value << 20);
        }

        Family(text, "sharpvisor_domain_balloon_actual_bytes", "gauge", "Memory the balloon holds.");
        foreach (DomainStats d in domains.Where(d => d.BalloonActualMib is not null))
        {
            Sample(text, "sharpvisor_domain_balloon_actual_bytes", Labels(d), d.BalloonActualMib!.Value << 20);
        }

        return text.ToString();
    }

    private static void Family(StringBuilder text, string name, string type, string help) =>
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
            .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Sample(StringBuilder text, string name, string labels, double value) =>
        text.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');

    private static string Labels(DomainStats d, params (string Name, string Value)[] extra)
    {
        var labels = new StringBuilder("{");
        labels.Append("domain=\"").Append(Escape(d.Name)).Append("\",id=\"").Append(d.Id).Append('"');
        foreach ((string name, string value) in extra)
        {
            labels.Append(',').Append(name).Append("=\"").Append(Escape(value)).Append('"');
        }

        return labels.Append('}').ToString();
    }

    /// <summary>Label values escape backslash, quote and newline.</summary>
    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
