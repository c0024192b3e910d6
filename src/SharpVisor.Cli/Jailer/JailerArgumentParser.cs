using System.Text;

namespace SharpVisor.Cli.Jailer;

/// <summary>
/// The jailer's command line parsed as Firecracker's arg_parser.rs parses it, so that an
/// orchestrator sees the same refusals: "--" ends the options (the rest goes to the exec-file),
/// --help/-h and --version win over everything, every option is "--name" and a value is the next
/// word unless it starts with "--", no option twice unless it allows several (--cgroup,
/// --resource-limit), then the required ones checked in the options' name order.
/// </summary>
public sealed class JailerArgumentParser
{
    private readonly JailerArgument[] _sorted;
    private readonly Dictionary<string, JailerArgument> _arguments = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public JailerArgumentParser(IEnumerable<JailerArgument> arguments)
    {
        foreach (JailerArgument argument in arguments)
        {
            _arguments[argument.Name] = argument;
        }

        _sorted = [.. _arguments.Values];
        Array.Sort(_sorted, (a, b) => string.CompareOrdinal(a.Name, b.Name));
    }

    public bool HelpRequested { get; private set; }

    public bool VersionRequested { get; private set; }

    /// <summary>The words after "--": the exec-file's own arguments.</summary>
    public IReadOnlyList<string> ExtraArguments { get; private set; } = [];

    public void Parse(IReadOnlyList<string> args)
    {
        int separator = -1;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--")
            {
                separator = i;
                break;
            }
        }

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
                throw Refusal($"UnexpectedArgument({Debug(word)})", $"Found argument '{word}' which wasn't expected, or isn't valid in this context.");
            }

            string name = word[2..];
            if (!_arguments.TryGetValue(name, out JailerArgument? argument))
            {
                throw Refusal($"UnexpectedArgument({Debug(name)})", $"Found argument '{name}' which wasn't expected, or isn't valid in this context.");
            }

            if (!argument.AllowMultiple && _values.ContainsKey(name))
            {
                throw Refusal($"DuplicateArgument({Debug(name)})", $"The argument '{name}' was provided more than once.");
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
                    throw Refusal($"MissingValue({Debug(name)})", $"The argument '{name}' requires a value, but none was supplied.");
                }

                values.Add(options[++i]);
            }
        }

        foreach (JailerArgument argument in _sorted)
        {
            if (argument.Required && !_values.ContainsKey(argument.Name))
            {
                throw Refusal($"MissingArgument({Debug(argument.Name)})", $"Argument '{argument.Name}' required, but not found.");
            }
        }
    }

    /// <summary>The value given for a single-value option, else its default, else null.</summary>
    public string? Value(string name) =>
        _values.TryGetValue(name, out List<string>? values) && values.Count > 0 ? values[0] : _arguments[name].DefaultValue;

    /// <summary>Every value given for a repeatable option, in order; null when it was not given.</summary>
    public IReadOnlyList<string>? Values(string name) => _values.TryGetValue(name, out List<string>? values) ? values : null;

    public bool Flag(string name) => _values.ContainsKey(name);

    /// <summary>Firecracker's help text: the required arguments, then the optional ones, each aligned, with its default.</summary>
    public string FormattedHelp()
    {
        var help = new StringBuilder();
        foreach (bool required in new[] { true, false })
        {
            JailerArgument[] group = [.. _sorted.Where(a => a.Required == required)];
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
            foreach (JailerArgument argument in group)
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

    /// <summary>JailerError::ArgumentParsing around one of arg_parser's errors.</summary>
    private static JailerException Refusal(string variant, string message) =>
        new($"ArgumentParsing({variant})", "Failed to parse arguments: " + message);

    /// <summary>A string as Rust's Debug formats it: quoted, with \\ and \" escaped.</summary>
    public static string Debug(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
