using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SharpVisor.Security;

/// <summary>
/// A domain's measurement log: one line per measurement, appended (O_APPEND, never rewritten),
/// each carrying a hash chained over the previous line so a removed or edited line shows:
/// <c>time seq digest match|MISMATCH reason chain</c>. Writes that fail are counted, not thrown.
/// </summary>
public sealed class MeasurementLog : IDisposable
{
    private readonly object _gate = new();
    private readonly FileStream _file;
    private string _chain = new('0', 64);
    private long _sequence;

    public MeasurementLog(string path)
    {
        Path = path;
        _file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
    }

    public string Path { get; }

    public long WriteFailures { get; private set; }

    /// <summary>Appends one record; <paramref name="reason"/> says why it was taken (golden, periodic, demand).</summary>
    public string Append(Measurement measurement, bool matchesGolden, string reason)
    {
        lock (_gate)
        {
            _sequence++;
            string body = string.Create(
                CultureInfo.InvariantCulture,
                $"{measurement.Time.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffZ} seq={_sequence} {reason} digest={measurement.Digest} {(matchesGolden ? "match" : "MISMATCH")} text={measurement.Text} rodata={measurement.ReadOnlyData} idt={measurement.Idt} registers={measurement.Registers}");
            _chain = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(_chain + "\n" + body)));
            string line = $"{body} chain={_chain}\n";
            try
            {
                _file.Write(Encoding.ASCII.GetBytes(line));
                _file.Flush();
            }
            catch (IOException)
            {
                WriteFailures++;
            }

            return line;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _file.Dispose();
        }
    }
}
