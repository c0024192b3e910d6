namespace SharpVisor.Machine;

/// <summary>The x86 I/O port space (64 KiB). Unassigned ports read as all-ones and ignore writes.</summary>
public sealed class PortIoBus : IoBus<IPortIoDevice>
{
    public void Register(ushort basePort, ushort count, IPortIoDevice device, string name) =>
        RegisterRange(basePort, count, device, name);

    /// <summary>Returns false when no device claims the port (the data is then all-ones).</summary>
    public bool Read(ushort port, Span<byte> data)
    {
        if (TryFind(port, data.Length, out Entry entry, out ulong offset))
        {
            entry.Device.Read((ushort)offset, data);
            return true;
        }

        data.Fill(0xFF);
        return false;
    }

    public bool Write(ushort port, ReadOnlySpan<byte> data)
    {
        if (TryFind(port, data.Length, out Entry entry, out ulong offset))
        {
            entry.Device.Write((ushort)offset, data);
            return true;
        }

        return false;
    }
}
