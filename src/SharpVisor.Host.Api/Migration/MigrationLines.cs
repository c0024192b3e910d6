using System.Text;
using System.Text.Json;

namespace SharpVisor.Host.Migration;

/// <summary>
/// The line stream of a migration request, relayed hop by hop (VMM → daemon → CLI): progress
/// lines, then one <c>migrated: ...</c> or <c>error: ...</c> line that ends it.
/// </summary>
public static class MigrationLines
{
    public const string Migrated = "migrated: ";
    public const string Error = "error: ";

    /// <summary>PUTs or POSTs <paramref name="body"/> and hands each line of the streamed answer to <paramref name="line"/>; returns the last line.</summary>
    public static async Task<string> RelayAsync(HttpClient http, HttpMethod method, string path, object body, Func<string, Task> line, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(method, path)
        {
            Content = new StringContent(JsonSerializer.Serialize(body, MigrationJsonContext.Default.DictionaryStringObject), Encoding.UTF8, "application/json"),
        };
        using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        if (!response.IsSuccessStatusCode)
        {
            string fault = await response.Content.ReadAsStringAsync(cancel);
            string message = fault;
            try
            {
                using JsonDocument document = JsonDocument.Parse(fault);
                message = document.RootElement.GetProperty("fault_message").GetString() ?? fault;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                // Not the API's fault body: the raw text is the message.
            }

            string error = Error + message;
            await line(error);
            return error;
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
        string last = Error + "the migration ended without a result (the VMM went away)";
        while (await reader.ReadLineAsync(cancel) is { } text)
        {
            await line(text);
            if (text.StartsWith(Migrated, StringComparison.Ordinal) || text.StartsWith(Error, StringComparison.Ordinal))
            {
                last = text;
            }
        }

        return last;
    }
}
