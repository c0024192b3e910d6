namespace SharpVisor.Machine.Protection;

/// <summary>A half-open address range [<see cref="Start"/>, <see cref="End"/>).</summary>
public readonly record struct ProtectedRange(ulong Start, ulong End)
{
    public ulong Length => End - Start;

    public bool Contains(ulong address) => address >= Start && address < End;

    public override string ToString() => $"0x{Start:x}-0x{End:x}";
}
