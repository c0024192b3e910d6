using System.Text;

namespace SharpVisor.Boot;

/// <summary>Encodes and checks a kernel command line: bytes without NULs, within the kernel's limit, NUL-terminated.</summary>
internal static class BootCommandLine
{
    /// <summary>The command line as it goes into guest memory, terminating NUL included.</summary>
    public static byte[] Encode(string kernelFile, string commandLine, long maxLength)
    {
        if (commandLine.Contains('\0'))
        {
            throw new BootImageException(kernelFile, "the command line contains a NUL character");
        }

        byte[] text = Encoding.UTF8.GetBytes(commandLine);
        long limit = Math.Min(maxLength, BootLayout.CommandLineAreaSize - 1);
        if (text.Length > limit)
        {
            throw new BootImageException(kernelFile, $"the command line is {text.Length} bytes long but this kernel accepts at most {limit}");
        }

        byte[] terminated = new byte[text.Length + 1];
        text.CopyTo(terminated, 0);
        return terminated;
    }
}
