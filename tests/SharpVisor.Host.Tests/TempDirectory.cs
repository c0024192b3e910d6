namespace SharpVisor.Host.Tests;

/// <summary>A short-named directory under /tmp (Unix socket paths must stay under 108 bytes), removed at the end.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("sv-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A small file standing in for a kernel or disk image where only its existence matters.</summary>
    public string CreateFile(string name, int size = 4096)
    {
        string path = File(name);
        System.IO.File.WriteAllBytes(path, new byte[size]);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
