namespace SharpVisor.Host.Xl;

/// <summary>An xl.cfg file SharpVisor cannot read or cannot run: the message names the line or key and says why.</summary>
public sealed class XlConfigException(string message) : Exception(message);
