using SharpVisor.Devices.Terminal;

namespace SharpVisor.Cli;

/// <summary>SharpVisor's own lines on stderr, with a carriage return while the terminal is in raw mode.</summary>
public sealed class Notices
{
    private readonly SerialConsole _console;

    public Notices(SerialConsole console)
    {
        _console = console;
    }

    public void Say(string message)
    {
        string end = _console.IsInteractive ? "\r\n" : "\n";
        Console.Error.Write($"[sharpvisor] {message}{end}");
    }
}
