using System.Globalization;
using System.Text;

namespace SharpVisor.Security;

/// <summary>
/// A domain's kernel protection policy, as given by
/// <c>--protect kernel[,cr-pin][,msr-pin][,measure=SECONDS][,mode=enforce|log][,measure-log=PATH]</c>
/// (docs/security.md). <see cref="ToString"/> is the canonical form that quotes carry.
/// </summary>
public sealed record ProtectionPolicy
{
    /// <summary>The longest measurement interval accepted (a day).</summary>
    public const int MaxMeasureSeconds = 86_400;

    /// <summary>Kernel text and read-only data (and the IDT) write-protected, supervisor code only in kernel text and the module area.</summary>
    public bool Kernel { get; init; }

    /// <summary>CR0.WP, CR4.SMEP, CR4.SMAP, CR4.UMIP may not be cleared after lock (those set at lock).</summary>
    public bool PinControlRegisters { get; init; }

    /// <summary>LSTAR and SYSENTER_EIP may not change, EFER.NXE may not be cleared after lock.</summary>
    public bool PinMsrs { get; init; }

    /// <summary>Measure the protected state every this many seconds after lock; null: on demand only.</summary>
    public int? MeasureSeconds { get; init; }

    public ProtectionMode Mode { get; init; }

    /// <summary>The append-only measurement log; null: none kept.</summary>
    public string? MeasurementLogPath { get; init; }

    /// <summary>Parses the option's value; throws <see cref="ArgumentException"/> with a one-line reason.</summary>
    public static ProtectionPolicy Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            throw new ArgumentException("--protect: empty policy (expected kernel[,cr-pin][,msr-pin][,measure=SECONDS][,mode=enforce|log])");
        }

        var policy = new ProtectionPolicy();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string item in text.Split(','))
        {
            int equals = item.IndexOf('=', StringComparison.Ordinal);
            string key = equals < 0 ? item : item[..equals];
            string? value = equals < 0 ? null : item[(equals + 1)..];
            if (key.Length == 0)
            {
                throw new ArgumentException($"--protect {text}: empty item");
            }

            if (!seen.Add(key))
            {
                throw new ArgumentException($"--protect {text}: '{key}' is given twice");
            }

            policy = key switch
            {
                "kernel" => policy with { Kernel = Flag(text, key, value) },
                "cr-pin" => policy with { PinControlRegisters = Flag(text, key, value) },
                "msr-pin" => policy with { PinMsrs = Flag(text, key, value) },
                "measure" => policy with { MeasureSeconds = Seconds(text, value) },
                "mode" => policy with
                {
                    Mode = value switch
                    {
                        "enforce" => ProtectionMode.Enforce,
                        "log" => ProtectionMode.Log,
                        _ => throw new ArgumentException($"--protect {text}: mode is enforce or log, not '{value}'"),
                    },
                },
                "measure-log" => policy with
                {
                    MeasurementLogPath = string.IsNullOrEmpty(value)
                        ? throw new ArgumentException($"--protect {text}: measure-log needs a file path")
                        : value,
                },
                _ => throw new ArgumentException($"--protect {text}: unknown item '{key}' (expected kernel, cr-pin, msr-pin, measure=SECONDS, mode=enforce|log, measure-log=PATH)"),
            };
        }

        if (!policy.Kernel && !policy.PinControlRegisters && !policy.PinMsrs)
        {
            throw new ArgumentException($"--protect {text}: nothing to protect (give kernel, cr-pin or msr-pin)");
        }

        return policy;
    }

    /// <summary>The canonical text: the items set, in a fixed order (what a quote signs).</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        void Add(string item) => text.Append(text.Length == 0 ? "" : ",").Append(item);
        if (Kernel)
        {
            Add("kernel");
        }

        if (PinControlRegisters)
        {
            Add("cr-pin");
        }

        if (PinMsrs)
        {
            Add("msr-pin");
        }

        if (MeasureSeconds is { } seconds)
        {
            Add(string.Create(CultureInfo.InvariantCulture, $"measure={seconds}"));
        }

        Add(Mode == ProtectionMode.Log ? "mode=log" : "mode=enforce");
        return text.ToString();
    }

    private static bool Flag(string text, string key, string? value) =>
        value is null ? true : throw new ArgumentException($"--protect {text}: '{key}' takes no value");

    private static int Seconds(string text, string? value)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) || seconds < 1 || seconds > MaxMeasureSeconds)
        {
            throw new ArgumentException($"--protect {text}: measure is a whole number of seconds from 1 to {MaxMeasureSeconds}, not '{value}'");
        }

        return seconds;
    }
}
