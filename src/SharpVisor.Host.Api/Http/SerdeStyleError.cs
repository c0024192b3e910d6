using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;

namespace SharpVisor.Host.Http;

/// <summary>
/// Firecracker's answer to a body it cannot deserialize, from System.Text.Json's exception:
/// "An error occurred when deserializing the json body of a request: CLAUSE at line L column C."
/// with serde_json's clauses for the common cases — "unknown field `x`, expected one of `a`,
/// `b`", "missing field `x`", "invalid type: ..., expected ..." — so clients that match
/// Firecracker's messages match ours. Positions come from System.Text.Json and may differ from
/// serde's by a column; other syntax errors keep System.Text.Json's wording.
/// </summary>
public static partial class SerdeStyleError
{
    public const string Prefix = "An error occurred when deserializing the json body of a request: ";

    public static string Describe(JsonException e, JsonTypeInfo root)
    {
        string clause = Clause(e, root);
        string position = e.LineNumber is long line ? $" at line {line + 1} column {(e.BytePositionInLine ?? 0) + 1}" : "";
        return $"{Prefix}{clause}{position}.";
    }

    private static string Clause(JsonException e, JsonTypeInfo root)
    {
        string message = e.Message;
        if (UnmappedProperty().Match(message) is { Success: true } unmapped)
        {
            return $"unknown field `{unmapped.Groups[1].Value}`, {Expected(FieldsOf(unmapped.Groups[2].Value, root))}";
        }

        if (MissingProperties().Match(message) is { Success: true } missing)
        {
            return $"missing field `{missing.Groups[1].Value}`";
        }

        if (NotConvertible().Match(message) is { Success: true } convert)
        {
            // System.Text.Json may name the containing type; the field's own type is what serde names.
            string expected = TypeAt(root, e.Path)?.FullName ?? convert.Groups[1].Value;
            return $"invalid type: {(e.Path is { Length: > 1 } path ? $"value at {path[2..]}" : "value")}, expected {Friendly(expected)}";
        }

        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd('.');
    }

    /// <summary>The declared type at a JSON path such as "$.rate_limiter.ops.size" or "$.drives[0].drive_id".</summary>
    private static Type? TypeAt(JsonTypeInfo root, string? path)
    {
        if (path is null || !path.StartsWith('$'))
        {
            return null;
        }

        Type? type = root.Type;
        foreach (string segment in path[1..].Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            string name = segment;
            int bracket = name.IndexOf('[', StringComparison.Ordinal);
            if (bracket >= 0)
            {
                name = name[..bracket];
            }

            if (type is null || !root.Options.TryGetTypeInfo(type, out JsonTypeInfo? info))
            {
                return null;
            }

            type = info.Properties.FirstOrDefault(p => p.Name == name)?.PropertyType;
            if (bracket >= 0 && type is { IsGenericType: true })
            {
                type = type.GetGenericArguments()[0];
            }

            type = type is not null && Nullable.GetUnderlyingType(type) is { } underlying ? underlying : type;
        }

        return type;
    }

    /// <summary>serde's "expected" phrasing for a struct's fields.</summary>
    private static string Expected(IReadOnlyList<string> fields) => fields.Count switch
    {
        0 => "there are no fields",
        1 => $"expected `{fields[0]}`",
        2 => $"expected `{fields[0]}` or `{fields[1]}`",
        _ => "expected one of " + string.Join(", ", fields.Select(f => $"`{f}`")),
    };

    /// <summary>
    /// The JSON fields of the type System.Text.Json named, found among the types reachable from the
    /// body's root type (no Type.GetType: the Firecracker front end is NativeAOT, without reflection over names).
    /// </summary>
    private static IReadOnlyList<string> FieldsOf(string typeName, JsonTypeInfo root)
    {
        var seen = new HashSet<Type>();
        var pending = new Queue<Type>([root.Type]);
        while (pending.TryDequeue(out Type? type))
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (!seen.Add(type))
            {
                continue;
            }

            if (type.IsGenericType)
            {
                foreach (Type argument in type.GetGenericArguments())
                {
                    pending.Enqueue(argument);
                }
            }

            if (!root.Options.TryGetTypeInfo(type, out JsonTypeInfo? info))
            {
                continue;
            }

            if (type.FullName == typeName)
            {
                return info.Properties.Select(p => p.Name).ToList();
            }

            if (info.ElementType is { } element)
            {
                pending.Enqueue(element);
            }

            foreach (JsonPropertyInfo property in info.Properties)
            {
                pending.Enqueue(property.PropertyType);
            }
        }

        return [];
    }

    private static string Friendly(string dotnetType) => dotnetType switch
    {
        "System.Int32" => "i32",
        "System.Int64" => "i64",
        "System.UInt32" => "u32",
        "System.UInt64" => "u64",
        "System.Int16" => "i16",
        "System.UInt16" => "u16",
        "System.Byte" => "u8",
        "System.Boolean" => "a boolean",
        "System.String" => "a string",
        _ when dotnetType.StartsWith("System.Nullable`1[", StringComparison.Ordinal) => Friendly(dotnetType[18..^1]),
        _ when dotnetType.StartsWith("System.Collections.Generic.List", StringComparison.Ordinal) => "a sequence",
        _ => $"struct {dotnetType[(dotnetType.LastIndexOf('.') + 1)..]}",
    };

    [GeneratedRegex(@"^The JSON property '([^']*)' could not be mapped to any \.NET member contained in type '([^']*)'")]
    private static partial Regex UnmappedProperty();

    [GeneratedRegex(@"missing required properties including: '([^']*)'")]
    private static partial Regex MissingProperties();

    [GeneratedRegex(@"^The JSON value could not be converted to ([^ ]+)\.")]
    private static partial Regex NotConvertible();
}
