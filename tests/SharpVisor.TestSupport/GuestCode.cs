using Iced.Intel;

namespace SharpVisor.TestSupport;

/// <summary>
/// Assembles tiny test guests with the Iced assembler: write the code with
/// <see cref="Assembler"/> and get the bytes for a given load address.
/// </summary>
public static class GuestCode
{
    public static byte[] Assemble(int bitness, ulong loadAddress, Action<Assembler> build)
    {
        var assembler = new Assembler(bitness);
        build(assembler);
        using var stream = new MemoryStream();
        assembler.Assemble(new StreamCodeWriter(stream), loadAddress);
        return stream.ToArray();
    }
}
