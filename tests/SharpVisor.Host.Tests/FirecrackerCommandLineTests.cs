using System.Diagnostics;
using SharpVisor.Cli.Commands;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Tests;

/// <summary>
/// `sharpvisor firecracker` refuses a command line as Firecracker's arg_parser.rs does: the
/// same error on standard error ("Error: ParseArguments(...)", Rust's Debug form), the same
/// log line on standard output and exit code 153. Expected texts are Firecracker's.
/// </summary>
public sealed class FirecrackerCommandLineTests
{
    [Theory]
    [InlineData(new[] { "--foo" }, "UnexpectedArgument(\"foo\")", "Found argument 'foo' which wasn't expected, or isn't valid in this context.")]
    [InlineData(new[] { "positional" }, "UnexpectedArgument(\"positional\")", "Found argument 'positional' which wasn't expected, or isn't valid in this context.")]
    [InlineData(new[] { "-x" }, "UnexpectedArgument(\"-x\")", "Found argument '-x' which wasn't expected, or isn't valid in this context.")]
    [InlineData(new[] { "--id", "a", "--id", "b" }, "DuplicateArgument(\"id\")", "The argument 'id' was provided more than once.")]
    [InlineData(new[] { "--api-sock" }, "MissingValue(\"api-sock\")", "The argument 'api-sock' requires a value, but none was supplied.")]
    [InlineData(new[] { "--api-sock", "--id", "x" }, "MissingValue(\"api-sock\")", "The argument 'api-sock' requires a value, but none was supplied.")]
    [InlineData(new[] { "--no-api" }, "MissingArgument(\"config-file\")", "Argument 'config-file' required, but not found.")]
    [InlineData(new[] { "--no-seccomp", "--seccomp-filter", "/f" }, "ForbiddenArgument(\"no-seccomp\", \"seccomp-filter\")", "Argument 'seccomp-filter' cannot be used together with argument 'no-seccomp'.")]
    [InlineData(new[] { "--say\"hi" }, "UnexpectedArgument(\"say\\\"hi\")", "Found argument 'say\"hi' which wasn't expected, or isn't valid in this context.")]
    public void RefusalsMatchFirecrackers(string[] args, string variant, string display)
    {
        var parser = new FirecrackerArgumentParser(FirecrackerCommand.Arguments);

        var e = Assert.Throws<FirecrackerArgumentException>(() => parser.Parse(args));

        Assert.Equal(variant, e.Variant);
        Assert.Equal(display, e.Message);
    }

    [Fact]
    public void HelpAndVersionWinAndEverythingAfterDoubleDashIsExtra()
    {
        var help = new FirecrackerArgumentParser(FirecrackerCommand.Arguments);
        help.Parse(["--bogus", "-h"]);
        var version = new FirecrackerArgumentParser(FirecrackerCommand.Arguments);
        version.Parse(["--bogus", "--version"]);
        var extra = new FirecrackerArgumentParser(FirecrackerCommand.Arguments);
        extra.Parse(["--id", "vm1", "--boot-timer", "--", "--anything", "goes"]);

        Assert.True(help.HelpRequested);
        Assert.True(version.VersionRequested);
        Assert.Equal("vm1", extra.Value("id"));
        Assert.True(extra.Flag("boot-timer"));
        Assert.Equal(FirecrackerCommand.DefaultApiSocket, extra.Value("api-sock"));
        Assert.Equal(["--anything", "goes"], extra.ExtraArguments);
    }

    [Fact]
    public async Task TheProcessExitsWith153AndFirecrackersMessages()
    {
        ProcessStartInfo start = SharpVisorCommand.FrontEnd("--api-sock", "/tmp/x.sock", "--bogus-flag");
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.Equal(153, process.ExitCode);
        Assert.Equal("Error: ParseArguments(UnexpectedArgument(\"bogus-flag\"))\n", stderr);
        string[] lines = (await stdout).TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[anonymous-instance:main\] Arguments parsing error: Found argument 'bogus-flag' which wasn't expected, or isn't valid in this context\.", lines[0]);
        Assert.EndsWith("[anonymous-instance:main] Firecracker exiting with error. exit_code=153", lines[1]);
    }
}
