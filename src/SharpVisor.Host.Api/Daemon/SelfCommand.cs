using System.Reflection;

namespace SharpVisor.Host.Daemon;

/// <summary>How to run this same program again: the sharpvisor apphost, or `dotnet sharpvisor.dll`.</summary>
public sealed record SelfCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    public static SelfCommand Current
    {
        get
        {
            string processPath = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
            if (Path.GetFileNameWithoutExtension(processPath) == "dotnet")
            {
                string entry = Assembly.GetEntryAssembly()?.Location ?? throw new InvalidOperationException("the entry assembly is unknown");
                return new SelfCommand(processPath, [entry]);
            }

            return new SelfCommand(processPath, []);
        }
    }
}
