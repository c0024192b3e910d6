using System.Globalization;
using System.Text;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The VMM's own log, configured like Firecracker's (PUT /logger, --log-path, --level...):
/// lines "TIMESTAMP [ID:THREAD(:LEVEL)(:ORIGIN)] message" written to a file or FIFO that
/// must already exist. Until configured, warnings and errors go to standard error as before.
/// Thread-safe.
/// </summary>
public sealed class VmmLog : IDisposable
{
    private readonly object _lock = new();
    private readonly string _instanceId;
    private Stream? _output;
    private VmmLogLevel _level = VmmLogLevel.Info;
    private bool _showLevel;
    private bool _showOrigin;
    private string? _module;

    public VmmLog(string instanceId)
    {
        _instanceId = instanceId;
    }

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

    public static VmmLogLevel ParseLevel(string? text) => text?.ToLowerInvariant() switch
    {
        null => VmmLogLevel.Info,
        "off" => VmmLogLevel.Off,
        "error" => VmmLogLevel.Error,
        "warning" or "warn" => VmmLogLevel.Warning,
        "info" => VmmLogLevel.Info,
        "debug" => VmmLogLevel.Debug,
        "trace" => VmmLogLevel.Trace,
        _ => throw ApiException.BadRequest($"level '{text}' is not one of Error, Warning, Info, Debug, Trace, Off"),
    };

    /// <summary>PUT /logger: checks everything, then switches to the new output (closing the old one).</summary>
    public void Configure(LoggerConfiguration config)
    {
        VmmLogLevel level = ParseLevel(config.Level);
        Stream? output = config.LogPath is { } path ? OpenExisting(path, "log_path") : null;
        lock (_lock)
        {
            if (output is not null)
            {
                _output?.Dispose();
                _output = output;
            }

            _level = level;
            _showLevel = config.ShowLevel ?? false;
            _showOrigin = config.ShowLogOrigin ?? false;
            _module = string.IsNullOrEmpty(config.Module) ? null : config.Module;
        }
    }

    public void Write(VmmLogLevel level, string origin, string message)
    {
        lock (_lock)
        {
            if (_output is null)
            {
                if (level is VmmLogLevel.Error or VmmLogLevel.Warning)
                {
                    System.Console.Error.WriteLine(message);
                }

                return;
            }

            if (level == VmmLogLevel.Off || level > _level || (_module is not null && !origin.StartsWith(_module, StringComparison.Ordinal)))
            {
                return;
            }

            var line = new StringBuilder();
            line.Append(DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture));
            line.Append(" [").Append(_instanceId).Append(':').Append(Thread.CurrentThread.Name ?? "main");
            if (_showLevel)
            {
                line.Append(':').Append(level.ToString().ToUpperInvariant());
            }

            if (_showOrigin)
            {
                line.Append(':').Append(origin);
            }

            line.Append("] ").Append(message.ReplaceLineEndings(" ")).Append('\n');
            try
            {
                _output.Write(Encoding.UTF8.GetBytes(line.ToString()));
                _output.Flush();
            }
            catch (IOException)
            {
                // A log reader that went away must not take the VMM down.
            }
        }
    }

    public void Error(string origin, string message) => Write(VmmLogLevel.Error, origin, message);

    public void Warning(string origin, string message) => Write(VmmLogLevel.Warning, origin, message);

    public void Info(string origin, string message) => Write(VmmLogLevel.Info, origin, message);

    public void Debug(string origin, string message) => Write(VmmLogLevel.Debug, origin, message);

    public void Dispose()
    {
        lock (_lock)
        {
            _output?.Dispose();
            _output = null;
        }
    }

    /// <summary>
    /// Opens a file or FIFO that must exist, as Firecracker does: read-write so a FIFO opens
    /// without waiting for its reader; a regular file is appended to.
    /// </summary>
    public static Stream OpenExisting(string path, string field)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\0'))
        {
            throw ApiException.BadRequest($"{field} must be a path");
        }

        if (!File.Exists(path))
        {
            throw ApiException.BadRequest($"{field} '{path}' does not exist (create the file or FIFO first, as for Firecracker)");
        }

        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            if (stream.CanSeek)
            {
                stream.Seek(0, SeekOrigin.End);
            }

            return stream;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ApiException.BadRequest($"{field} '{path}' cannot be opened: {e.Message}");
        }
    }
}
