namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int ConsoleWrite = 0;
    private const int ConsoleRead = 1;

    /// <summary>console_io: a guest write goes to the console (Xen prints a domU's too); reads find nothing.</summary>
    private long ConsoleIo(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        int count = HypercallFrame.CheckLength(frame.Argument(1), 64 * 1024);
        ulong buffer = frame.Argument(2);
        switch (command)
        {
            case ConsoleWrite:
            {
                var bytes = new byte[count];
                frame.ReadBytes(buffer, bytes);
                Counters.Add("console-io-bytes", count);
                _options.ConsoleOutput?.Invoke(bytes);
                return 0;
            }

            case ConsoleRead:
                return 0;

            default:
                return Unknown(frame, "console_io command", command);
        }
    }
}
