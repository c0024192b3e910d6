namespace SharpVisor.Machine;

/// <summary>Guest physical addresses not backed by RAM that devices claim. Unclaimed reads return all-ones.</summary>
public sealed class MmioBus : IoBus<IMmioDevice>
{
    public void Register(ulong baseAddress, ulong size, IMmioDevice device, string name) =>
        RegisterRange(baseAddress, size, device, name);

    public bool Read(ulong address, Span<byte> data)
    {
        if (TryFind(address, data.Length, out Entry entry, out ulong offset))
        {
            entry.Device.Read(offset, data);
            return true;
        }

        data.Fill(0xFF);
        return false;
    }

    public bool Write(ulong address, ReadOnlySpan<byte> data)
    {
        if (TryFind(address, data.Length, out Entry entry, out ulong offset))
        {
            entry.Device.Write(offset, data);
            return true;
        }

        return false;
    }
}
