using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Http;

/// <summary>Writes the answers both APIs share: 204 on success, {"fault_message": ...} on failure.</summary>
public static class ApiResults
{
    public static IResult NoContent() => Results.StatusCode(StatusCodes.Status204NoContent);

    public static IResult Fault(int statusCode, string message) =>
        Results.Json(new ApiError { FaultMessage = message }, FirecrackerJsonContext.Default.ApiError, statusCode: statusCode);

    /// <summary>
    /// Runs a handler and maps refusals to 4xx answers. An unexpected exception is a 500 with
    /// its message (never a stack trace on the wire).
    /// </summary>
    public static async Task<IResult> GuardAsync(Func<Task<IResult>> handler)
    {
        try
        {
            return await handler();
        }
        catch (ApiException e)
        {
            return Fault(e.StatusCode, e.Message);
        }
        catch (DomainStateException e)
        {
            return Fault(StatusCodes.Status409Conflict, e.Message);
        }
        catch (BadHttpRequestException e)
        {
            return Fault(e.StatusCode, e.Message);
        }
        catch (OperationCanceledException)
        {
            return Fault(StatusCodes.Status503ServiceUnavailable, "the request was cancelled");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Fault(StatusCodes.Status500InternalServerError, $"{e.GetType().Name}: {e.Message}");
        }
    }

    public static Task<IResult> Guard(Func<IResult> handler) => GuardAsync(() => Task.FromResult(handler()));

    /// <summary>
    /// Gives the answers routing produces without a body (405 for a known path with another
    /// method) the same {"fault_message": ...} body as every other refusal.
    /// </summary>
    public static void UseFaultBodies(Microsoft.AspNetCore.Builder.IApplicationBuilder app) =>
        Microsoft.AspNetCore.Builder.StatusCodePagesExtensions.UseStatusCodePages(app, async context =>
        {
            HttpContext http = context.HttpContext;
            await Fault(http.Response.StatusCode, $"{http.Request.Method} is not allowed on {http.Request.Path}").ExecuteAsync(http);
        });

    /// <summary>The fault message of an error body, or the body itself when it is not one.</summary>
    public static string ReadFaultMessage(string body)
    {
        try
        {
            ApiError? error = JsonSerializer.Deserialize(body, FirecrackerJsonContext.Default.ApiError);
            if (error is not null)
            {
                return error.FaultMessage;
            }
        }
        catch (JsonException)
        {
        }

        return body.Length > 200 ? body[..200] : body;
    }
}
