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
