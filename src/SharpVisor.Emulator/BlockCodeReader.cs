using Iced.Intel;

namespace SharpVisor.Emulator;

/// <summary>Feeds the Iced decoder from guest code already mapped to a host pointer (or a small split buffer).</summary>
internal sealed unsafe class BlockCodeReader : CodeReader
{
    private byte* _bytes;
    private int _length;
    private int _position;

    public void Reset(byte* bytes, int length, int position)
    {
        _bytes = bytes;
        _length = length;
        _position = position;
    }

    public int Position => _position;

    public override int ReadByte() => _position < _length ? _bytes[_position++] : -1;
}
