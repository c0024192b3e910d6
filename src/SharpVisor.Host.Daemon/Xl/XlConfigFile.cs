using System.Globalization;
using System.Text;

namespace SharpVisor.Host.Xl;

/// <summary>
/// The syntax of Xen's xl.cfg (xl.cfg(5), libxlu's cfg parser): <c>KEY = VALUE</c> settings,
/// one per line or separated by ';', where a value is a quoted string ('...' or "..."), a
/// number, or a list of those in [ ... ] that may span lines; '#' starts a comment. Only the
/// syntax lives here: what the keys mean is <see cref="XlDomainConfig"/>'s business.
/// </summary>
public sealed class XlConfigFile
{
    private readonly Dictionary<string, XlValue> _settings = new(StringComparer.Ordinal);

    private XlConfigFile()
    {
    }

    public IReadOnlyDictionary<string, XlValue> Settings => _settings;

    /// <summary>True for text that is not JSON: a config for <c>sharpvisor create</c> is xl.cfg unless it starts with '{'.</summary>
    public static bool LooksLikeXl(string text) => !text.TrimStart().StartsWith('{');

    public static XlConfigFile Parse(string text)
    {
        var file = new XlConfigFile();
        var reader = new Reader(text);
        while (true)
        {
            reader.SkipBlanks(newlines: true);
            if (reader.AtEnd)
            {
                return file;
            }

            if (reader.Peek == ';')
            {
                reader.Next();
                continue;
            }

            int line = reader.Line;
            string key = reader.Identifier();
            reader.SkipBlanks(newlines: false);
            reader.Expect('=', $"'=' after '{key}'");
            reader.SkipBlanks(newlines: false);
            XlValue value = reader.Value(allowList: true);
            if (!file._settings.TryAdd(key, value))
            {
                throw new XlConfigException($"line {line}: '{key}' is set twice");
            }

            reader.SkipBlanks(newlines: false);
            if (!reader.AtEnd && reader.Peek is not ('\n' or ';'))
            {
                throw new XlConfigException($"line {reader.Line}: unexpected '{reader.Peek}' after the value of '{key}'");
            }
        }
    }

    /// <summary>A value: a string, a number (kept as its text) or a list of strings and numbers.</summary>
    public sealed record XlValue(string? Scalar, IReadOnlyList<string>? List, bool IsNumber, int Line);

    private sealed class Reader(string text)
    {
        private int _position;

        public int Line { get; private set; } = 1;

        public bool AtEnd => _position >= text.Length;

        public char Peek => text[_position];

        public char Next()
        {
            char c = text[_position++];
            if (c == '\n')
            {
                Line++;
            }

            return c;
        }

        public void SkipBlanks(bool newlines)
        {
            while (!AtEnd)
            {
                char c = Peek;
                if (c == '#')
                {
                    while (!AtEnd && Peek != '\n')
                    {
                        Next();
                    }
                }
                else if (c is ' ' or '\t' or '\r' || (newlines && c == '\n'))
                {
                    Next();
                }
                else
                {
                    return;
                }
            }
        }

        public void Expect(char expected, string what)
        {
            if (AtEnd || Peek != expected)
            {
                throw new XlConfigException($"line {Line}: expected {what}, found {(AtEnd ? "the end of the file" : $"'{Peek}'")}");
            }

            Next();
        }

        public string Identifier()
        {
            int start = _position;
            while (!AtEnd && (char.IsAsciiLetterOrDigit(Peek) || Peek is '_' or '-' or '.'))
            {
                Next();
            }

            if (start == _position)
            {
                throw new XlConfigException($"line {Line}: expected a setting name, found '{Peek}'");
            }

            return text[start.._position];
        }

        public XlValue Value(bool allowList)
        {
            int line = Line;
            if (AtEnd)
            {
                throw new XlConfigException($"line {line}: a value is missing at the end of the file");
            }

            char c = Peek;
            if (c == '[' && allowList)
            {
                Next();
                var items = new List<string>();
                while (true)
                {
                    SkipBlanks(newlines: true);
                    RequireListNotEnded(line);
                    if (Peek == ']')
                    {
                        Next();
                        return new XlValue(null, items, false, line);
                    }

                    XlValue item = Value(allowList: false);
                    items.Add(item.Scalar!);
                    SkipBlanks(newlines: true);
                    RequireListNotEnded(line);
                    if (Peek == ',')
                    {
                        Next();
                    }
                    else if (Peek != ']')
                    {
                        throw new XlConfigException($"line {Line}: expected ',' or ']' in the list that starts on line {line}");
                    }
                }
            }

            if (c is '"' or '\'')
            {
                return new XlValue(QuotedString(), null, false, line);
            }

            int start = _position;
            while (!AtEnd && (char.IsAsciiLetterOrDigit(Peek) || Peek is '.' or '-' or '_'))
            {
                Next();
            }

            string word = text[start.._position];
            if (word.Length == 0)
            {
                throw new XlConfigException($"line {line}: expected a value (a quoted string, a number or a [list]), found '{c}'");
            }

            if (!long.TryParse(word, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) &&
                !(word.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && long.TryParse(word[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out _)))
            {
                throw new XlConfigException($"line {line}: '{word}' is neither a number nor a quoted string");
            }

            return new XlValue(word, null, true, line);
        }

        private string QuotedString()
        {
            int line = Line;
            char quote = Next();
            var value = new StringBuilder();
            while (true)
            {
                if (AtEnd || Peek == '\n')
                {
                    throw new XlConfigException($"line {line}: the string has no closing {quote}");
                }

                char c = Next();
                if (c == quote)
                {
                    return value.ToString();
                }

                if (c == '\\' && !AtEnd)
                {
                    char escaped = Next();
                    value.Append(escaped switch { 'n' => '\n', 't' => '\t', _ => escaped });
                    continue;
                }

                value.Append(c);
            }
        }

        private void RequireListNotEnded(int listLine)
        {
            if (AtEnd)
            {
                throw new XlConfigException($"line {listLine}: the list has no closing ']'");
            }
        }
    }
}
