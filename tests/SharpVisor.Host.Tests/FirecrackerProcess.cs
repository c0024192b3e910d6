using System.Diagnostics;
using SharpVisor.Host.Http;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// A <c>sharpvisor firecracker</c> process that a test drives over its API socket, optionally
/// inside a network namespace: its standard output (the guest's serial console) is collected
/// line by line, its standard error is kept for the failure message, and it is killed on
/// dispose if it still runs.
/// </summary>
internal sealed class FirecrackerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Task<string> _standardError;

    private FirecrackerProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_lines)
                {
                    _lines.Add(e.Data);
                }
            }
        };
        _process.BeginOutputReadLine();
        _standardError = _process.StandardError.ReadToEndAsync();
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>The console lines so far.</summary>
    public string[] Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>The console so far, one line per line.</summary>
    public string Output => string.Join('\n', Lines);

    /// <summary>
    /// Starts out/firecracker ARGUMENTS (the NativeAOT front end, which hands over to this test
    /// build's JIT VMM at InstanceStart), inside <paramref name="netns"/> when given.
    /// </summary>
    public static FirecrackerProcess Start(IEnumerable<string> arguments, NetworkNamespace? netns = null)
    {
        ProcessStartInfo start = SharpVisorCommand.FrontEnd([.. arguments]);
        if (netns is not null)
        {
            start.ArgumentList.Insert(0, start.FileName);
            foreach (string argument in new[] { "netns", "exec", netns.Name }.Reverse())
            {
                start.ArgumentList.Insert(0, argument);
            }

            start.FileName = "ip";
        }

        return new FirecrackerProcess(Process.Start(start)!);
    }

    public int Id => _process.Id;

    public Task WaitForApiAsync(string socket, TimeSpan timeout) =>
        Eventually.TrueAsync(() => UnixSocketFiles.IsListening(socket), timeout, "the API socket listens");

    /// <summary>Waits until a console line contains <paramref name="marker"/>; fails early if the VMM exits first.</summary>
    public async Task WaitForLineAsync(string marker, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!Lines.Any(l => l.Contains(marker, StringComparison.Ordinal)))
        {
            if (DateTime.UtcNow > deadline || _process.HasExited)
            {
                string exit = _process.HasExited ? $"the VMM exited with status {_process.ExitCode}" : "the VMM still runs";
                Assert.Fail($"the guest never printed {marker} ({exit}); its output ends:\n{string.Join('\n', Lines.TakeLast(40))}");
            }

            await Task.Delay(100);
        }
    }

    public async Task<bool> ExitsWithinAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The standard error of the exited (or killed) process.</summary>
    public async Task<string> StandardErrorAsync()
    {
        await StopAsync();
        return await _standardError;
    }

    /// <summary>The exception to throw for <paramref name="failure"/>: the VMM stopped, its console and standard error attached.</summary>
    public async Task<Exception> FailureAsync(Exception failure) =>
        new Xunit.Sdk.XunitException($"{failure.Message}\nguest console:\n{Output}\nVMM standard error:\n{await StandardErrorAsync()}");

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    private async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
    }
}
