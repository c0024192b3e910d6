namespace SharpVisor.Boot;

/// <summary>Reads kernels, initrds and modules, turning every I/O failure into a one-line <see cref="BootImageException"/>.</summary>
internal static class BootFile
{
    /// <summary>Largest file accepted: guest spans are int-sized, and nothing bootable is 2 GiB.</summary>
    public const long MaxSize = int.MaxValue;

    /// <summary>The file's length after checking it exists, is a regular file and is neither empty nor huge.</summary>
    public static long GetLength(string path, string what)
    {
        if (Directory.Exists(path))
        {
            throw new BootImageException(path, $"is a directory, not a {what} file");
        }

        if (!File.Exists(path))
        {
            throw new BootImageException(path, $"{what} file not found");
        }

        long length;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BootImageException(path, $"cannot read {what}: {e.Message}", e);
        }

        if (length == 0)
        {
            throw new BootImageException(path, $"{what} file is empty");
        }

        if (length > MaxSize)
        {
            throw new BootImageException(path, $"{what} file is too large ({length >> 20} MiB)");
        }

        return length;
    }

    public static byte[] ReadAll(string path, string what)
    {
        GetLength(path, what);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BootImageException(path, $"cannot read {what}: {e.Message}", e);
        }
    }

    /// <summary>Fills <paramref name="destination"/> (usually guest memory) from the start of the file.</summary>
    public static void ReadInto(string path, string what, Span<byte> destination)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
            stream.ReadExactly(destination);
        }
        catch (EndOfStreamException e)
        {
            throw new BootImageException(path, $"{what} file shrank while it was being read", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BootImageException(path, $"cannot read {what}: {e.Message}", e);
        }
    }
}
