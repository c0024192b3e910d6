namespace SharpVisor.Host.Tests;

/// <summary>A jailer test that builds a real jail: it needs root (mount namespaces, pivot_root, mknod, setuid); skipped loudly elsewhere.</summary>
public sealed class JailerFactAttribute : FactAttribute
{
    public JailerFactAttribute()
    {
        if (Environment.UserName != "root")
        {
            Skip = "SKIPPED — NEEDS ROOT: the jailer makes mount namespaces, device nodes and cgroups and switches uid/gid";
        }
    }
}
