using System.Collections;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using SharpVisor.Host.Console;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;
using SharpVisor.Host.Vmm;
using SharpVisor.Interop;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The NativeAOT front end's machine factory (out/firecracker): it builds no machine. When
/// InstanceStart (or a snapshot load) asks for one, it execs the JIT VMM in the same process
/// (same PID) with the API and console listeners, the pending request's connection and a memfd
/// holding <see cref="VmmHandoverState"/>; the JIT VMM replays the accepted configuration and
/// answers the pending request. A handover that cannot happen (no JIT VMM, exec refused) throws
/// <see cref="DomainConfigurationException"/>, which fails the request with the reason; the front
/// end keeps serving.
/// </summary>
public sealed class VmmHandover : IDomainMachineFactory, IApiRequestObserver
{
    /// <summary>Overrides where the JIT VMM is: an executable, or a sharpvisor.dll run by dotnet.</summary>
    public const string JitVmmVariable = "SHARPVISOR_JIT_VMM";

    [ThreadStatic]
    private static ApiRequest? t_dispatching;

    private readonly object _lock = new();
    private readonly List<VmmHandoverRequest> _accepted = [];
    private UnixSocketHttpServer? _api;
    private ConsoleSocketServer? _console;
    private VmmController? _controller;

    /// <summary>The Firecracker command line the front end was started with (the JIT VMM parses it again).</summary>
    public IReadOnlyList<string> CommandLine { get; set; } = [];

    /// <summary>Where the JIT VMM is looked for: $SHARPVISOR_JIT_VMM, else cli/sharpvisor beside this executable (out/cli beside out/firecracker).</summary>
    public static string JitVmmPath =>
        Environment.GetEnvironmentVariable(JitVmmVariable) is { Length: > 0 } path
            ? path
            : Path.Combine(AppContext.BaseDirectory, "cli", "sharpvisor");

    public void Listening(UnixSocketHttpServer api, ConsoleSocketServer console, VmmController controller)
    {
        _api = api;
        _console = console;
        _controller = controller;
    }

    public void Dispatching(ApiRequest request) => t_dispatching = request;

    /// <summary>Keeps every accepted change of the configuration (a successful PUT or PATCH other than an action) for the replay.</summary>
    public void Served(ApiRequest request, ApiResponse response)
    {
        t_dispatching = null;
        if (response.StatusCode < 300 && request.Method is "PUT" or "PATCH" && request.Path != "/actions")
        {
            lock (_lock)
            {
                _accepted.Add(VmmHandoverRequest.From(request));
            }
        }
    }

    public IDomainMachine Create(MachineConfiguration configuration, Stream serialOutput) => HandOver();

    public IDomainMachine Restore(string statePath, string memoryPath, Stream serialOutput, Action<string>? log) => HandOver();

    /// <summary>--config-file: the JIT VMM runs the whole command line; nothing was bound yet. Returns only on failure.</summary>
    public int ExecWithCommandLine(IReadOnlyList<string> args)
    {
        try
        {
            Exec(["firecracker", .. args], keepOpen: []);
        }
        catch (DomainConfigurationException e)
        {
            return FirecrackerCommandLine.Fail(e.Message);
        }

        return FirecrackerCommandLine.ErrorExitCode;
    }

    private IDomainMachine HandOver()
    {
        ApiRequest pending = t_dispatching ?? throw new DomainConfigurationException("the Firecracker front end builds no machine outside an API request");
        if (_api is null || _console is null || _controller is null || pending.Connection is null)
        {
            throw new DomainConfigurationException("the Firecracker front end cannot hand over before its API listens");
        }

        List<VmmHandoverRequest> accepted;
        lock (_lock)
        {
            accepted = [.. _accepted];
        }

        Socket connection = pending.Connection.Socket;
        var state = new VmmHandoverState
        {
            Arguments = [.. CommandLine],
            ApiSocketFd = Descriptor(_api.Listener),
            ConsoleSocketFd = Descriptor(_console.Listener),
            ConnectionFd = Descriptor(connection),
            Buffered = [.. Encode(pending), .. pending.Connection.BufferedBytes()],
            Requests = accepted,
            StartupMicroseconds = _controller.Metrics.StartupMicroseconds,
            StartupCpuMicroseconds = _controller.Metrics.StartupCpuMicroseconds,
            RequestCounts = _controller.Metrics.UnflushedRequestCounts(),
        };
        int memfd;
        try
        {
            memfd = state.WriteToMemfd();
        }
        catch (Exception e) when (e is LinuxException or IOException)
        {
            throw new DomainConfigurationException($"the handover to the JIT VMM failed: {e.Message}");
        }

        try
        {
            Exec(["firecracker", VmmHandoverState.DescriptorOption, memfd.ToString(System.Globalization.CultureInfo.InvariantCulture)],
                keepOpen: [state.ApiSocketFd, state.ConsoleSocketFd, state.ConnectionFd, memfd]);
        }
        finally
        {
            LibC.Close(memfd);
        }

        throw new UnreachableException();
    }

    /// <summary>
    /// Execs the JIT VMM with <paramref name="args"/> after clearing FD_CLOEXEC on
    /// <paramref name="keepOpen"/>; on failure puts FD_CLOEXEC back and throws with the reason.
    /// </summary>
    private static void Exec(IReadOnlyList<string> args, int[] keepOpen)
    {
        string vmm = JitVmmPath;
        if (!File.Exists(vmm))
        {
            throw new DomainConfigurationException($"the handover to the JIT VMM failed: {vmm} does not exist (build it with ./sharpvisor, or set {JitVmmVariable})");
        }

        string program = vmm;
        var argv = new List<string>();
        if (vmm.EndsWith(".dll", StringComparison.Ordinal))
        {
            program = FindDotnet() ?? throw new DomainConfigurationException($"the handover to the JIT VMM failed: {vmm} needs dotnet, which is not on PATH");
            argv.Add(program);
        }

        argv.Add(vmm);
        argv.AddRange(args);
        foreach (int fd in keepOpen)
        {
            SetCloseOnExec(fd, false);
        }

        System.Console.Out.Flush();
        System.Console.Error.Flush();
        LibC.Execve(program, argv, EnvironmentBlock());
        int errno = Marshal.GetLastPInvokeError();
        foreach (int fd in keepOpen)
        {
            SetCloseOnExec(fd, true);
        }

        throw new DomainConfigurationException($"the handover to the JIT VMM failed: exec {program}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    private static void SetCloseOnExec(int fd, bool closeOnExec)
    {
        int flags = LibC.Fcntl(fd, LibC.F_GETFD, 0);
        if (flags < 0 || LibC.Fcntl(fd, LibC.F_SETFD, closeOnExec ? flags | LibC.FD_CLOEXEC : flags & ~LibC.FD_CLOEXEC) < 0)
        {
            throw new DomainConfigurationException($"the handover to the JIT VMM failed: fcntl on descriptor {fd}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    private static int Descriptor(Socket socket) => (int)socket.SafeHandle.DangerousGetHandle();

    private static List<string> EnvironmentBlock()
    {
        var variables = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            variables[(string)variable.Key] = (string?)variable.Value;
        }

        VmmRuntimeEnvironment.ApplyTo(variables);
        var environment = new List<string>();
        foreach ((string name, string? value) in variables)
        {
            environment.Add($"{name}={value}");
        }

        return environment;
    }

    private static string? FindDotnet()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }

        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, "dotnet");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The pending request as HTTP/1.1 again, for the JIT VMM's reader: method, path, query and body.</summary>
    private static byte[] Encode(ApiRequest request)
    {
        var head = new StringBuilder();
        head.Append(request.Method).Append(' ').AppendJoin('/', request.Path.Split('/').Select(Uri.EscapeDataString));
        char separator = '?';
        foreach ((string key, string value) in request.Query)
        {
            head.Append(separator).Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
            separator = '&';
        }

        head.Append(" HTTP/1.1\r\nHost: localhost\r\nContent-Length: ").Append(request.Body.Length).Append("\r\n");
        if (!request.KeepAlive)
        {
            head.Append("Connection: close\r\n");
        }

        head.Append("\r\n");
        return [.. Encoding.UTF8.GetBytes(head.ToString()), .. request.Body];
    }
}
