namespace SharpVisor.Host.Console;

/// <summary>Takes bytes typed on a console, for the guest's UART.</summary>
public delegate void ConsoleInputHandler(ReadOnlySpan<byte> data);
