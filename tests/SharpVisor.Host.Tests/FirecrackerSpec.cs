using System.Globalization;
using System.Text.Json;
using YamlDotNet.Serialization;

namespace SharpVisor.Host.Tests;

/// <summary>
/// The Firecracker API spec (swagger 2.0, Firecracker/firecracker-api.yaml in this project, Apache-2.0), loaded
/// with YamlDotNet, and a small validator for what SharpVisor's tests send and receive: paths,
/// methods, status codes, and JSON bodies against the definitions (types, required fields,
/// known properties, enums, minimum/maximum).
/// </summary>
public sealed class FirecrackerSpec
{
    private readonly Dictionary<object, object> _root;

    private FirecrackerSpec(Dictionary<object, object> root)
    {
        _root = root;
    }

    /// <summary>The spec file the build copies beside the test assembly (Firecracker/firecracker-api.yaml in this project).</summary>
    public static string Locate()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Firecracker", "firecracker-api.yaml");
        Assert.True(File.Exists(path), $"{path} missing: the build copies tests/SharpVisor.Host.Tests/Firecracker/firecracker-api.yaml there");
        return path;
    }

    public static FirecrackerSpec Load() =>
        new(new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(File.ReadAllText(Locate())));

    public string Version => (string)Map(_root["info"])["version"];

    /// <summary>The spec's path template for a concrete path (/drives/rootfs → /drives/{drive_id}), or null.</summary>
    public string? MatchPath(string path)
    {
        string[] parts = path.Split('/');
        foreach (string template in Map(_root["paths"]).Keys.Cast<string>())
        {
            string[] templateParts = template.Split('/');
            if (templateParts.Length == parts.Length
                && templateParts.Zip(parts).All(p => p.First == p.Second || (p.First.StartsWith('{') && p.Second.Length > 0)))
            {
                return template;
            }
        }

        return null;
    }

    /// <summary>Every operation of the spec: (GET/PUT/PATCH, path template).</summary>
    public IEnumerable<(string Method, string Template)> Operations() =>
        Map(_root["paths"]).SelectMany(path => Map(path.Value).Keys.Cast<string>()
            .Where(m => m is "get" or "put" or "patch" or "post" or "delete")
            .Select(m => (m.ToUpperInvariant(), (string)path.Key)));

    public Dictionary<object, object>? Operation(string method, string template) =>
        Map(Map(_root["paths"])[template]).TryGetValue(method.ToLowerInvariant(), out object? operation) ? Map(operation) : null;

    public IReadOnlyList<string> StatusCodes(string method, string template) =>
        Map(Operation(method, template)!["responses"]).Keys.Select(k => k.ToString()!).ToList();

    /// <summary>Errors of a request body against the operation's body parameter (empty when valid).</summary>
    public List<string> ValidateRequest(string method, string template, string? body)
    {
        Dictionary<object, object> operation = Operation(method, template)!;
        var parameter = operation.TryGetValue("parameters", out object? parameters)
            ? ((List<object>)parameters).Select(Map).FirstOrDefault(p => (string)p["in"] == "body")
            : null;
        if (parameter is null)
        {
            return body is null ? [] : [$"{method} {template} takes no body"];
        }

        if (body is null)
        {
            return parameter.TryGetValue("required", out object? required) && IsTrue(required) ? [$"{method} {template} needs a body"] : [];
        }

        using JsonDocument json = JsonDocument.Parse(body);
        var errors = new List<string>();
        Validate(Map(parameter["schema"]), json.RootElement, "$", errors);
        return errors;
    }

    /// <summary>Errors of a response against the schema the spec gives for its status (or "default").</summary>
    public List<string> ValidateResponse(string method, string template, int status, string body)
    {
        Dictionary<object, object> responses = Map(Operation(method, template)!["responses"]);
        object? response = responses.TryGetValue(status.ToString(CultureInfo.InvariantCulture), out object? exact) ? exact
            : responses.TryGetValue("default", out object? fallback) ? fallback : null;
        if (response is null)
        {
            return [$"status {status} is not in the spec for {method} {template}"];
        }

        if (!Map(response).TryGetValue("schema", out object? schema))
        {
            return body.Length == 0 ? [] : [$"status {status} of {method} {template} has no body in the spec, got '{body}'"];
        }

        using JsonDocument json = JsonDocument.Parse(body);
        var errors = new List<string>();
        Validate(Map(schema), json.RootElement, "$", errors);
        return errors;
    }

    private void Validate(Dictionary<object, object> schema, JsonElement value, string at, List<string> errors)
    {
        if (schema.TryGetValue("$ref", out object? reference))
        {
            string name = ((string)reference)["#/definitions/".Length..];
            Validate(Map(Map(_root["definitions"])[name]), value, at, errors);
            return;
        }

        string type = schema.TryGetValue("type", out object? t) ? (string)t : "object";
        switch (type)
        {
            case "object":
                if (value.ValueKind != JsonValueKind.Object)
                {
                    errors.Add($"{at}: expected an object");
                    return;
                }

                Dictionary<object, object> properties = schema.TryGetValue("properties", out object? p) ? Map(p) : new();
                bool open = schema.TryGetValue("additionalProperties", out object? additional) && IsTrue(additional);
                foreach (JsonProperty property in value.EnumerateObject())
                {
                    if (properties.TryGetValue(property.Name, out object? propertySchema))
                    {
                        Validate(Map(propertySchema), property.Value, $"{at}.{property.Name}", errors);
                    }
                    else if (!open)
                    {
                        errors.Add($"{at}: property '{property.Name}' is not in the spec");
                    }
                }

                if (schema.TryGetValue("required", out object? required))
                {
                    foreach (string name in ((List<object>)required).Cast<string>())
                    {
                        if (!value.TryGetProperty(name, out _))
                        {
                            errors.Add($"{at}: required property '{name}' is missing");
                        }
                    }
                }

                break;
            case "array":
                if (value.ValueKind != JsonValueKind.Array)
                {
                    errors.Add($"{at}: expected an array");
                    return;
                }

                int index = 0;
                foreach (JsonElement item in value.EnumerateArray())
                {
                    Validate(Map(schema["items"]), item, $"{at}[{index++}]", errors);
                }

                break;
            case "string":
                if (value.ValueKind != JsonValueKind.String)
                {
                    errors.Add($"{at}: expected a string");
                }
                else if (schema.TryGetValue("enum", out object? values) && !((List<object>)values).Cast<string>().Contains(value.GetString()))
                {
                    errors.Add($"{at}: '{value.GetString()}' is not one of the spec's values");
                }

                break;
            case "integer":
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number))
                {
                    errors.Add($"{at}: expected an integer");
                    return;
                }

                if (schema.TryGetValue("minimum", out object? min) && number < long.Parse((string)min, CultureInfo.InvariantCulture))
                {
                    errors.Add($"{at}: {number} is below the spec's minimum {min}");
                }

                if (schema.TryGetValue("maximum", out object? max) && number > long.Parse((string)max, CultureInfo.InvariantCulture))
                {
                    errors.Add($"{at}: {number} is above the spec's maximum {max}");
                }

                break;
            case "boolean":
                if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    errors.Add($"{at}: expected a boolean");
                }

                break;
            default:
                errors.Add($"{at}: the validator does not know type '{type}'");
                break;
        }
    }

    private static Dictionary<object, object> Map(object node) => (Dictionary<object, object>)node;

    private static bool IsTrue(object node) => node is string s && s == "true";
}
