using System.Diagnostics;

namespace SharpVisor.Cli.Tests;

/// <summary>Runs the real `sharpvisor` command (the built CLI assembly) in a child process.</summary>
public static class SharpVisorProcess
{
    public sealed record Result(int ExitCode, string StandardOutput, string StandardError);

    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "sharpvisor.dll");

    /// <param name="wrapper">A command the CLI runs under, e.g. setpriv dropping a capability.</param>
    public static Result Run(IEnumerable<string> arguments, IDictionary<string, string>? environment = null,
        TimeSpan? timeout = null, string? runAsUser = null, string[]? wrapper = null)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };

        if (wrapper is not null)
        {
            start.FileName = wrapper[0];
            foreach (string a in wrapper.Skip(1).Append("dotnet"))
            {
                start.ArgumentList.Add(a);
            }
        }
        else if (runAsUser is null)
        {
            start.FileName = "dotnet";
        }
        else
        {
            // setpriv drops to an unprivileged user for permission tests (we run as root here).
            start.FileName = "setpriv";
            foreach (string a in new[] { $"--reuid={runAsUser}", $"--regid={runAsUser}", "--clear-groups", "dotnet" })
            {
                start.ArgumentList.Add(a);
            }

            start.Environment["DOTNET_CLI_HOME"] = Path.GetTempPath();
        }

        start.ArgumentList.Add(AssemblyPath);
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        if (environment is not null)
        {
            foreach ((string key, string value) in environment)
            {
                start.Environment[key] = value;
            }
        }

        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"sharpvisor {string.Join(' ', arguments)} did not finish in time; stderr so far: {stderr.Result}");
        }

        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
