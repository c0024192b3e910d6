using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using SharpVisor.Interop;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// A small ext4 filesystem on a loop device, mounted in a scratch directory, for tests that must
/// see what reached the disk rather than what is in the host page cache: a file's blocks are found
/// with <c>filefrag -v</c> and read from the loop device with O_DIRECT, which bypasses the page
/// cache and does not write back the file's dirty pages. Needs root, /dev/loop-control,
/// mkfs.ext4, losetup and filefrag. Dispose unmounts, detaches and deletes everything.
/// </summary>
public sealed partial class LoopExt4Filesystem : IDisposable
{
    private const int BlockSize = 4096;

    private readonly string _directory;
    private bool _mounted;

    private LoopExt4Filesystem(string directory)
    {
        _directory = directory;
        MountPoint = Path.Combine(directory, "mnt");
    }

    public string MountPoint { get; }

    /// <summary>The loop device (/dev/loopN) the filesystem is on; null until attached.</summary>
    public string? Device { get; private set; }

    /// <summary>
    /// Creates, attaches and mounts the filesystem; false with <paramref name="reason"/> when this
    /// host cannot attach or mount a loop device (not root, no loop devices, a container).
    /// </summary>
    public static bool TryCreate(long size, out LoopExt4Filesystem? filesystem, out string reason)
    {
        var created = new LoopExt4Filesystem(Path.Combine(Path.GetTempPath(), $"sharpvisor-loop-{Guid.NewGuid():N}"));
        try
        {
            Directory.CreateDirectory(created.MountPoint);
            string backing = Path.Combine(created._directory, "fs.img");
            using (var file = new FileStream(backing, FileMode.CreateNew))
            {
                file.SetLength(size);
            }

            Check(Run("mkfs.ext4", "-q", "-F", "-b", BlockSize.ToString(), backing), "mkfs.ext4");
            (int code, string stdout, string stderr) = Run("losetup", "-f", "--show", backing);
            if (code != 0)
            {
                reason = $"losetup -f --show failed: {stderr.Trim()}";
                created.Dispose();
                filesystem = null;
                return false;
            }

            created.Device = stdout.Trim();
            (code, _, stderr) = Run("mount", "-t", "ext4", created.Device, created.MountPoint);
            if (code != 0)
            {
                reason = $"mount {created.Device} failed: {stderr.Trim()}";
                created.Dispose();
                filesystem = null;
                return false;
            }

            created._mounted = true;
            filesystem = created;
            reason = "";
            return true;
        }
        catch
        {
            created.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Where byte <paramref name="offset"/> of <paramref name="file"/> lies on the loop device. The
    /// file must be allocated and written (ext4 overwrites such blocks in place); filefrag runs
    /// without -s, so asking does not flush the file.
    /// </summary>
    public long PhysicalOffset(string file, long offset)
    {
        (int code, string stdout, string stderr) = Run("filefrag", "-v", file);
        Check((code, stdout, stderr), "filefrag -v");
        Match header = FileSizeLine().Match(stdout);
        if (!header.Success || int.Parse(header.Groups[1].Value) != BlockSize)
        {
            throw new InvalidOperationException($"filefrag -v: no 'blocks of {BlockSize} bytes' in:\n{stdout}");
        }

        long block = offset / BlockSize;
        foreach (Match extent in ExtentLine().Matches(stdout))
        {
            long logicalStart = long.Parse(extent.Groups[1].Value);
            long logicalEnd = long.Parse(extent.Groups[2].Value);
            long physicalStart = long.Parse(extent.Groups[3].Value);
            string flags = extent.Groups[4].Value;
            if (block < logicalStart || block > logicalEnd)
            {
                continue;
            }

            if (flags.Contains("unknown", StringComparison.Ordinal) || flags.Contains("delalloc", StringComparison.Ordinal)
                || flags.Contains("unwritten", StringComparison.Ordinal) || flags.Contains("inline", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"block {block} of {file} is not written in place on the disk ({flags.Trim()})");
            }

            return ((physicalStart + (block - logicalStart)) * BlockSize) + (offset % BlockSize);
        }

        throw new InvalidOperationException($"filefrag -v: no extent holds block {block} of {file}:\n{stdout}");
    }

    /// <summary>Reads the loop device with O_DIRECT: what the filesystem wrote to the disk, not its page cache.</summary>
    public unsafe byte[] ReadFromDisk(long offset, int length)
    {
        if (offset % BlockSize != 0 || length % BlockSize != 0)
        {
            throw new ArgumentException("O_DIRECT needs block-aligned offsets and lengths");
        }

        int fd = LibC.Open(Device!, LibC.O_RDONLY | LibC.O_DIRECT | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"open {Device} O_DIRECT: {LibC.Strerror(Marshal.GetLastPInvokeError())}");
        }

        void* buffer = NativeMemory.AlignedAlloc((nuint)length, BlockSize);
        try
        {
            nint n = LibC.Pread(fd, buffer, (nuint)length, offset);
            if (n != length)
            {
                throw new IOException($"pread {Device} at {offset}: {(n < 0 ? LibC.Strerror(Marshal.GetLastPInvokeError()) : $"short read of {n}")}");
            }

            return new ReadOnlySpan<byte>(buffer, length).ToArray();
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
            LibC.Close(fd);
        }
    }

    public void Dispose()
    {
        if (_mounted && Run("umount", MountPoint).Code != 0)
        {
            // Something still holds a file open; detach lazily so the loop device can go.
            Run("umount", "-l", MountPoint);
        }

        _mounted = false;
        if (Device is not null)
        {
            Run("losetup", "-d", Device);
            Device = null;
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Still mounted (lazy unmount pending): leave the empty directory rather than fail the test.
        }
    }

    private static (int Code, string Stdout, string Stderr) Run(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new TimeoutException($"{command} {string.Join(' ', arguments)} did not finish in 60 s");
        }

        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static void Check((int Code, string Stdout, string Stderr) result, string what)
    {
        if (result.Code != 0)
        {
            throw new InvalidOperationException($"{what} failed ({result.Code}): {result.Stderr.Trim()}");
        }
    }

    [GeneratedRegex(@"\(\d+ blocks? of (\d+) bytes\)")]
    private static partial Regex FileSizeLine();

    // "   0:        0..     255:       1549..      1804:    256:             last,eof"
    [GeneratedRegex(@"^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.\s*\d+:\s*\d+:(.*)$", RegexOptions.Multiline)]
    private static partial Regex ExtentLine();
}
