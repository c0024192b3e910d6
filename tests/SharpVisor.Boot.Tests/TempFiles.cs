namespace SharpVisor.Boot.Tests;

/// <summary>A scratch directory for test images, deleted on dispose.</summary>
internal sealed class TempFiles : IDisposable
{
    public TempFiles()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("sharpvisor-boot-tests-").FullName;
    }

    public string Directory { get; }

    public string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A file of <paramref name="size"/> bytes of a position-dependent pattern, so misplaced copies show.</summary>
    public string WritePattern(string name, int size, byte seed)
    {
        return Write(name, TestImages.Pattern(size, seed));
    }

    /// <summary>A sparse file of <paramref name="size"/> zero bytes: large inputs without writing them.</summary>
    public string WriteSparse(string name, long size)
    {
        string path = Path.Combine(Directory, name);
        using FileStream stream = File.Create(path);
        stream.SetLength(size);
        return path;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
