using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SharpVisor.TestSupport;

/// <summary>
/// A network namespace the test creates (ip netns add) and removes. Code run through
/// <see cref="Enter"/> executes on a thread that joined the namespace (setns), so the sockets and
/// TAP interfaces it creates live there; <see cref="Ip"/> configures it with iproute2.
/// </summary>
public sealed partial class NetworkNamespace : IDisposable
{
    private const int CloneNewNet = 0x4000_0000;

    private NetworkNamespace(string name)
    {
        Name = name;
    }

    public string Name { get; }

    /// <summary>Null when this host can run namespace tests; else why not (the test then fails loudly as skipped).</summary>
    public static string? UnavailableReason =>
        Environment.UserName != "root" ? "needs root to create network namespaces"
        : !File.Exists("/dev/net/tun") ? "/dev/net/tun does not exist"
        : null;

    public static NetworkNamespace Create()
    {
        var ns = new NetworkNamespace($"sv{Guid.NewGuid():N}"[..12]);
        Run("ip", "netns", "add", ns.Name);
        return ns;
    }

    /// <summary>Runs <paramref name="action"/> on a fresh thread inside the namespace and returns its result.</summary>
    public T Enter<T>(Func<T> action)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{Name}");
                if (SetNs((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new IOException($"setns into {Name} failed: errno {Marshal.GetLastPInvokeError()}");
                }

                result = action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw new InvalidOperationException($"in network namespace {Name}: {failure.Message}", failure);
        }

        return result;
    }

    /// <summary>ip -n NAME ARGS.</summary>
    public string Ip(params string[] arguments) => Run("ip", ["-n", Name, .. arguments]);

    /// <summary>A command inside the namespace (ip netns exec).</summary>
    public string Exec(params string[] command) => Run("ip", ["netns", "exec", Name, .. command]);

    public void Dispose() => Run("ip", "netns", "del", Name);

    private static string Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error.Trim()}");
        }

        return output;
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
