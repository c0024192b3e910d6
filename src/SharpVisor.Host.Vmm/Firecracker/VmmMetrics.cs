using System.Diagnostics;
using System.Text.Json;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Firecracker's metrics (PUT /metrics, FlushMetrics): one JSON object per flush, one per
/// line. Counters are, as in Firecracker, what happened since the previous flush. Groups
/// written: utc_timestamp_ms, api_server, get/put/patch_api_requests, block (and
/// block_DRIVEID), net (and net_IFACEID), entropy, vcpu. Thread-safe.
/// </summary>
public sealed class VmmMetrics : IDisposable
{
    private readonly object _lock = new();
    private readonly Dictionary<string, long> _requests = new();
    private readonly Dictionary<string, long> _flushedRequests = new();
    private readonly Dictionary<string, long> _flushedDevices = new();
    private readonly Dictionary<string, long> _flushedExits = new();
    private Stream? _output;
    private MetricsConfiguration? _config;
    private long _startupMicroseconds;
    private long _startupCpuMicroseconds;

    public bool IsConfigured
    {
        get
        {
            lock (_lock)
            {
                return _output is not null;
            }
        }
    }

    /// <summary>Records how long the process took to serve its API (api_server.process_startup_time_us).</summary>
    public void MarkApiReady()
    {
        using Process self = Process.GetCurrentProcess();
        _startupMicroseconds = (long)(DateTime.Now - self.StartTime).TotalMicroseconds;
        _startupCpuMicroseconds = (long)self.TotalProcessorTime.TotalMicroseconds;
    }

    public long StartupMicroseconds => _startupMicroseconds;

    public long StartupCpuMicroseconds => _startupCpuMicroseconds;

    /// <summary>The request counts the next flush would write (what the handover carries to the JIT VMM).</summary>
    public Dictionary<string, long> UnflushedRequestCounts()
    {
        lock (_lock)
        {
            return _requests.ToDictionary(r => r.Key, r => r.Value - _flushedRequests.GetValueOrDefault(r.Key));
        }
    }

    /// <summary>
    /// After a handover: the front end's start-up time (the API answered then, not when the JIT VMM
    /// took over) and the request counts it had not flushed yet.
    /// </summary>
    public void Inherit(long startupMicroseconds, long startupCpuMicroseconds, IReadOnlyDictionary<string, long> requestCounts)
    {
        lock (_lock)
        {
            _startupMicroseconds = startupMicroseconds;
            _startupCpuMicroseconds = startupCpuMicroseconds;
            foreach ((string key, long count) in requestCounts)
            {
                _requests[key] = _requests.GetValueOrDefault(key) + count;
            }
        }
    }

    /// <summary>PUT /metrics: once, as in Firecracker.</summary>
    public void Configure(MetricsConfiguration config)
    {
        lock (_lock)
        {
            if (_output is not null)
            {
                throw ApiException.BadRequest("Reinitialization of metrics not allowed.");
            }

            _output = VmmLog.OpenExisting(config.MetricsPath, "metrics_path");
            _config = config;
        }
    }

    /// <summary>Counts one API request; <paramref name="name"/> is Firecracker's name for the resource (e.g. machine_cfg).</summary>
    public void CountRequest(string method, string name, bool failed)
    {
        string group = method.ToLowerInvariant() + "_api_requests";
        lock (_lock)
        {
            Increment(_requests, $"{group}.{name}_count");
            if (failed && method != "GET")
            {
                Increment(_requests, $"{group}.{name}_fails");
            }
        }
    }

    /// <summary>FlushMetrics: writes one line; false when metrics are not configured.</summary>
    public bool Flush(string instanceId, DomainCounters counters, ISet<string> drives, ISet<string> nics)
    {
        lock (_lock)
        {
            if (_output is null)
            {
                return false;
            }

            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteNumber("utc_timestamp_ms", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                if (_config!.EmitId == true)
                {
                    json.WriteString("id", instanceId);
                }

                if (_config.Properties is { Count: > 0 } properties)
                {
                    json.WriteStartObject("properties");
                    foreach ((string key, string value) in properties)
                    {
                        json.WriteString(key, value);
                    }

                    json.WriteEndObject();
                }

                json.WriteStartObject("api_server");
                json.WriteNumber("process_startup_time_us", _startupMicroseconds);
                json.WriteNumber("process_startup_time_cpu_us", _startupCpuMicroseconds);
                json.WriteEndObject();

                foreach (string group in new[] { "get_api_requests", "put_api_requests", "patch_api_requests" })
                {
                    json.WriteStartObject(group);
                    foreach ((string key, long value) in _requests.Where(r => r.Key.StartsWith(group + ".", StringComparison.Ordinal)).OrderBy(r => r.Key, StringComparer.Ordinal))
                    {
                        json.WriteNumber(key[(group.Length + 1)..], Delta(_flushedRequests, key, value));
                    }

                    json.WriteEndObject();
                }

                WriteDevices(json, counters, drives, "block", d => [("read_count", d.ReadRequests), ("read_bytes", d.ReadBytes), ("write_count", d.WriteRequests), ("write_bytes", d.WriteBytes)]);
                WriteDevices(json, counters, nics, "net", d => [("rx_packets_count", d.ReadRequests), ("rx_bytes_count", d.ReadBytes), ("tx_packets_count", d.WriteRequests), ("tx_bytes_count", d.WriteBytes)]);
                WriteDevices(json, counters, new HashSet<string> { "rng0" }, "entropy", d => [("entropy_event_count", d.ReadRequests), ("entropy_bytes", d.ReadBytes)], perDevice: false);

                json.WriteStartObject("vcpu");
                foreach ((string reason, long count) in counters.Exits.OrderBy(e => e.Key, StringComparer.Ordinal))
                {
                    json.WriteNumber("exit_" + reason.Replace('-', '_'), Delta(_flushedExits, reason, count));
                }

                json.WriteEndObject();
                json.WriteEndObject();
            }

            buffer.WriteByte((byte)'\n');
            try
            {
                _output.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                _output.Flush();
            }
            catch (IOException e)
            {
                throw ApiException.BadRequest($"cannot write the metrics: {e.Message}");
            }

            return true;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _output?.Dispose();
            _output = null;
        }
    }

    private void WriteDevices(Utf8JsonWriter json, DomainCounters counters, ISet<string> names, string group, Func<DeviceCounters, (string Name, long Value)[]> fields, bool perDevice = true)
    {
        var totals = new Dictionary<string, long>();
        var perDeviceValues = new List<(string Device, (string Name, long Value)[] Fields)>();
        foreach (DeviceCounters device in counters.Devices.Where(d => names.Contains(d.Name) && (d.Kind is null || d.Kind == group)))
        {
            (string Name, long Value)[] deltas = fields(device).Select(f => (f.Name, Delta(_flushedDevices, $"{group}.{device.Name}.{f.Name}", f.Value))).ToArray();
            perDeviceValues.Add((device.Name, deltas));
            foreach ((string name, long value) in deltas)
            {
                totals[name] = totals.GetValueOrDefault(name) + value;
            }
        }

        json.WriteStartObject(group);
        foreach ((string name, _) in fields(new DeviceCounters("", 0, 0, 0, 0)))
        {
            json.WriteNumber(name, totals.GetValueOrDefault(name));
        }

        json.WriteEndObject();
        if (!perDevice)
        {
            return;
        }

        foreach ((string device, (string Name, long Value)[] values) in perDeviceValues)
        {
            json.WriteStartObject($"{group}_{device}");
            foreach ((string name, long value) in values)
            {
                json.WriteNumber(name, value);
            }

            json.WriteEndObject();
        }
    }

    private static long Delta(Dictionary<string, long> flushed, string key, long value)
    {
        long delta = value - flushed.GetValueOrDefault(key);
        flushed[key] = value;
        return delta;
    }

    private static void Increment(Dictionary<string, long> counters, string key) => counters[key] = counters.GetValueOrDefault(key) + 1;
}
