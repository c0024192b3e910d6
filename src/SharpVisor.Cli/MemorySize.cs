using System.Globalization;
using System.Text.RegularExpressions;

namespace SharpVisor.Cli;

/// <summary>Parses sizes such as "512", "512M", "2G", "2GiB": a bare number means MiB.</summary>
public static partial class MemorySize
{
    [GeneratedRegex(@"^(?<number>[0-9]+)\s*(?<unit>[KMGT]?)(i?B)?$", RegexOptions.IgnoreCase)]
    private static partial Regex SizePattern();

    public static ulong Parse(string text)
    {
        Match match = SizePattern().Match(text.Trim());
        if (!match.Success)
        {
            throw new CliException($"memory size '{text}' is not a size (examples: 512, 512M, 2G)");
        }

        int shift = match.Groups["unit"].Value.ToUpperInvariant() switch
        {
            "K" => 10,
            "G" => 30,
            "T" => 40,
            _ => 20,
        };
        if (!ulong.TryParse(match.Groups["number"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value)
            || value == 0 || value > ulong.MaxValue >> shift)
        {
            throw new CliException($"memory size '{text}' is out of range");
        }

        return value << shift;
    }
}
