using System.Text;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Firecracker's command-line parser (src/utils/src/arg_parser.rs, which its jailer uses too) rule
/// for rule, so that an orchestrator sees the same refusals: "--" ends the options, --help/-h and
/// --version win over everything else, every option is "--name" (a value is the next word unless it
/// starts with "--"), no option twice unless it allows several, then required/requires/forbids
/// checked in the options' name order.
/// </summary>
public sealed class FirecrackerArgumentParser
{
    // Sorted once, by name (arg_parser.rs keeps a BTreeMap): checks and help follow that order.
    // An array, not a SortedDictionary: its generic code is not precompiled and would be jitted at start-up.
    private readonly FirecrackerArgument[] _sorted;
    private readonly Dictionary<string, FirecrackerArgument> _arguments = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public FirecrackerArgumentParser(IEnumerable<FirecrackerArgument> arguments)
    {
        foreach (FirecrackerArgument argument in arguments)
        {
            _arguments[argument.Name] = argument;
        }

        _sorted = [.. _arguments.Values];
        Array.Sort(_sorted, (a, b) => string.CompareOrdinal(a.Name, b.Name));
    }

    public IReadOnlyList<FirecrackerArgument> Arguments => _sorted;

    public bool HelpRequested { get; private set; }

    public bool VersionRequested { get; private set; }

    /// <summary>The words after "--".</summary>
    public IReadOnlyList<string> ExtraArguments { get; private set; } = [];

    public void Parse(IReadOnlyList<string> args)
    {
        int separator = args.ToList().IndexOf("--");
        List<string> options = separator < 0 ? [.. args] : [.. args.Take(separator)];
        ExtraArguments = separator < 0 ? [] : [.. args.Skip(separator + 1)];
        if (options.Contains("--help") || options.Contains("-h"))
        {
            HelpRequested = true;
            return;
        }

        if (options.Contains("--version"))
        {
            VersionRequested = true;
            return;
        }

        for (int i = 0; i < options.Count; i++)
        {
            string word = options[i];
            if (!word.StartsWith("--", StringComparison.Ordinal))
            {
                throw Unexpected(word);
            }

            string name = word[2..];
            if (!_arguments.TryGetValue(name, out FirecrackerArgument? argument))
            {
                throw Unexpected(name);
            }

            if (!argument.AllowMultiple && _values.ContainsKey(name))
            {
                throw new FirecrackerArgumentException($"DuplicateArgument({Debug(name)})", $"The argument '{name}' was provided more than once.");
            }

            if (!_values.TryGetValue(name, out List<string>? values))
            {
                values = [];
                _values[name] = values;
            }

            if (argument.TakesValue || argument.AllowMultiple)
            {
                if (i + 1 >= options.Count || options[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new FirecrackerArgumentException($"MissingValue({Debug(name)})", $"The argument '{name}' requires a value, but none was supplied.");
                }

                values.Add(options[++i]);
            }
        }

        foreach (FirecrackerArgument argument in _sorted)
        {
            if (!_values.ContainsKey(argument.Name))
            {
                if (argument.Required)
                {
                    throw new FirecrackerArgumentException($"MissingArgument({Debug(argument.Name)})", $"Argument '{argument.Name}' required, but not found.");
                }

                continue;
            }

            if (argument.Requires is { } required && !options.Contains("--" + required))
            {
                throw new FirecrackerArgumentException($"MissingArgument({Debug(required)})", $"Argument '{required}' required, but not found.");
            }

            foreach (string forbidden in argument.Forbids)
            {
                if (options.Contains("--" + forbidden))
                {
                    throw new FirecrackerArgumentException(
                        $"ForbiddenArgument({Debug(argument.Name)}, {Debug(forbidden)})",
                        $"Argument '{forbidden}' cannot be used together with argument '{argument.Name}'.");
                }
            }
        }
    }

    /// <summary>The value given for a value-taking option (the first, for a repeatable one), else its default, else null.</summary>
    public string? Value(string name) =>
        _values.TryGetValue(name, out List<string>? values) && values.Count > 0 ? values[0] : _arguments[name].DefaultValue;

    /// <summary>Every value given for a repeatable option, in order; null when it was not given.</summary>
    public IReadOnlyList<string>? Values(string name) => _values.TryGetValue(name, out List<string>? values) ? values : null;

    public bool Flag(string name) => _values.ContainsKey(name);

    /// <summary>Firecracker's help text: "required arguments:" (when there are any), then "optional arguments:", each group aligned, with defaults.</summary>
    public string FormattedHelp()
    {
        var help = new StringBuilder();
        foreach (bool required in new[] { true, false })
        {
            FirecrackerArgument[] group = Array.FindAll(_sorted, a => a.Required == required);
            if (group.Length == 0)
            {
                continue;
            }

            if (help.Length > 0)
            {
                help.Append("\n\n");
            }

            help.Append(required ? "required arguments:" : "optional arguments:");
            int width = group.Max(a => a.FormattedName.Length);
            foreach (FirecrackerArgument argument in group)
            {
                help.Append('\n').Append(argument.FormattedName.PadRight(width)).Append("   ").Append(argument.Help);
                if (argument.DefaultValue is { } value)
                {
                    help.Append(" [default: \"").Append(value).Append("\"]");
                }
            }
        }

        return help.ToString();
    }

    private static FirecrackerArgumentException Unexpected(string name) =>
        new($"UnexpectedArgument({Debug(name)})", $"Found argument '{name}' which wasn't expected, or isn't valid in this context.");

    /// <summary>A string as Rust's Debug formats it: quoted, with \\, \" and control characters escaped.</summary>
    public static string Debug(string value)
    {
        var text = new StringBuilder("\"");
        foreach (char c in value)
        {
            text.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\0' => "\\0",
                _ when char.IsControl(c) => $"\\u{{{(int)c:x}}}",
                _ => c.ToString(),
            });
        }

        return text.Append('"').ToString();
    }
}
