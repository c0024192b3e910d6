using System.Runtime.InteropServices;
using SharpVisor.Interop;

namespace SharpVisor.Cli.Jailer;

/// <summary>
/// What SharpVisor's VMM needs inside the jail that Firecracker's static binary does not, each
/// bound read-only (nosuid, nodev) at the same absolute path as on the host, so that the paths
/// compiled into the launcher and the runtime's own lookups resolve unchanged: the .NET install
/// (the JIT VMM runs on it), the directory of this SharpVisor build (out/cli: the VMM the
/// exec-file starts), the directories of the shared libraries this very runtime has mapped
/// (libc, libstdc++, OpenSSL: the same runtime will map the same ones), the x86-64 ELF
/// interpreter, and for a script exec-file its interpreter. Symbolic
/// links on the way (/lib64 → usr/lib64 on a merged-/usr host) are recreated in the jail.
/// </summary>
public sealed class JailRuntime
{
    /// <summary>The x86-64 psABI's program interpreter, named in every dynamically linked executable.</summary>
    public const string ElfInterpreter = "/lib64/ld-linux-x86-64.so.2";

    private readonly List<string> _bound = [];

    private JailRuntime(string dotnetRoot, string vmmDirectory, IReadOnlyList<string> libraryDirectories, string? scriptInterpreter)
    {
        DotnetRoot = dotnetRoot;
        VmmDirectory = vmmDirectory;
        LibraryDirectories = libraryDirectories;
        ScriptInterpreter = scriptInterpreter;
    }

    /// <summary>The .NET install the JIT VMM runs on (DOTNET_ROOT of the jailed process).</summary>
    public string DotnetRoot { get; }

    /// <summary>This build's directory: the JIT VMM and its assemblies.</summary>
    public string VmmDirectory { get; }

    public IReadOnlyList<string> LibraryDirectories { get; }

    /// <summary>The "#!" interpreter of a script exec-file, else null.</summary>
    public string? ScriptInterpreter { get; }

    /// <summary>The host paths bound into the jail so far (real paths).</summary>
    public IReadOnlyList<string> Bound => _bound;

    /// <summary>Finds what this process runs on, for an exec-file at <paramref name="execFile"/>.</summary>
    public static JailRuntime ForThisProcess(string execFile)
    {
        string dotnetRoot = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        string vmmDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        var libraries = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                continue;
            }

            string file = line[slash..];
            string name = Path.GetFileName(file);
            if (!name.EndsWith(".so", StringComparison.Ordinal) && !name.Contains(".so.", StringComparison.Ordinal))
            {
                continue;
            }

            string directory = Path.GetDirectoryName(file)!;
            if (!IsUnder(directory, dotnetRoot) && !IsUnder(directory, vmmDirectory))
            {
                libraries.Add(directory);
            }
        }

        return new JailRuntime(dotnetRoot, vmmDirectory, [.. libraries], ScriptInterpreterOf(execFile));
    }

    /// <summary>The environment the jailed process gets: only where the .NET install is (Firecracker's jailer passes none).</summary>
    public IReadOnlyList<string> Environment => ["DOTNET_ROOT=" + DotnetRoot];

    /// <summary>Binds everything into <paramref name="jailRoot"/> (in the jailer's own mount namespace).</summary>
    public void MountInto(string jailRoot)
    {
        Mirror(jailRoot, DotnetRoot);
        Mirror(jailRoot, VmmDirectory);
        foreach (string directory in LibraryDirectories)
        {
            Mirror(jailRoot, directory);
        }

        if (File.Exists(ElfInterpreter))
        {
            Mirror(jailRoot, ElfInterpreter);
        }

        if (ScriptInterpreter is not null)
        {
            Mirror(jailRoot, ScriptInterpreter);
        }

        // The exec-file's copy is /<name>: out/firecracker looks for its JIT VMM at cli/sharpvisor
        // beside itself, which in the jail is this build — the jailer's VMM is the one it hands over to.
        Bind(jailRoot, VmmDirectory, "/cli");
    }

    /// <summary>
    /// Makes <paramref name="hostPath"/> resolve in the jail as on the host: each symbolic link on
    /// the way is recreated (same target), the real file or directory at the end is bound read-only.
    /// </summary>
    private void Mirror(string jailRoot, string hostPath, int depth = 0)
    {
        if (depth > 16)
        {
            throw new JailerException("Mirror(..)", $"Failed to bind {hostPath} into the jail: too many levels of symbolic links");
        }

        string[] parts = hostPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        string current = "";
        for (int i = 0; i < parts.Length; i++)
        {
            string next = current + "/" + parts[i];
            var info = new FileInfo(next);
            if (info.LinkTarget is { } target)
            {
                string inJail = jailRoot + next;
                if (!File.Exists(inJail) && !Directory.Exists(inJail) && new FileInfo(inJail).LinkTarget is null)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(inJail)!);
                    File.CreateSymbolicLink(inJail, target);
                }

                string resolved = Path.GetFullPath(target, current.Length == 0 ? "/" : current);
                string rest = string.Join('/', parts[(i + 1)..]);
                Mirror(jailRoot, rest.Length == 0 ? resolved : resolved + "/" + rest, depth + 1);
                return;
            }

            current = next;
        }

        Bind(jailRoot, current.Length == 0 ? "/" : current);
    }

    private void Bind(string jailRoot, string realPath, string? pathInJail = null)
    {
        if (pathInJail is null && _bound.Any(b => IsUnder(realPath, b)))
        {
            return;
        }

        string target = jailRoot + (pathInJail ?? realPath);
        if (Directory.Exists(realPath))
        {
            Directory.CreateDirectory(target);
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (!File.Exists(target))
            {
                File.WriteAllBytes(target, []);
            }
        }

        if (LibC.Mount(realPath, target, null, LibC.MS_BIND, null) < 0)
        {
            throw JailerException.Os("MountBind", $"Failed to bind {realPath} into the jail", Marshal.GetLastPInvokeError());
        }

        if (LibC.Mount(null, target, null, LibC.MS_REMOUNT | LibC.MS_BIND | LibC.MS_RDONLY | LibC.MS_NOSUID | LibC.MS_NODEV, null) < 0)
        {
            throw JailerException.Os("MountBind", $"Failed to make {target} read-only", Marshal.GetLastPInvokeError());
        }

        if (pathInJail is null)
        {
            _bound.Add(realPath);
        }
    }

    private static bool IsUnder(string path, string directory) =>
        path == directory || path.StartsWith(directory.EndsWith('/') ? directory : directory + "/", StringComparison.Ordinal);

    /// <summary>The interpreter of a "#!" script: the first word after "#!".</summary>
    private static string? ScriptInterpreterOf(string execFile)
    {
        using FileStream file = File.OpenRead(execFile);
        byte[] head = new byte[256];
        int length = file.Read(head);
        if (length < 3 || head[0] != '#' || head[1] != '!')
        {
            return null;
        }

        string line = System.Text.Encoding.UTF8.GetString(head, 2, length - 2).Split('\n')[0].Trim();
        string interpreter = line.Split([' ', '\t'], 2)[0];
        return interpreter.StartsWith('/') ? interpreter : null;
    }
}
