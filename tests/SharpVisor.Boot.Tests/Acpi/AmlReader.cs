using System.Text;

namespace SharpVisor.Boot.Tests.Acpi;

/// <summary>
/// A tiny AML parser for the subset SharpVisor emits, used to check the DSDT structurally.
/// It insists that every PkgLength ends exactly where its contents end.
/// </summary>
public sealed class AmlReader
{
    private readonly byte[] _aml;
    private int _position;

    private AmlReader(byte[] aml)
    {
        _aml = aml;
    }

    public sealed record Node(string Kind, string? Name = null, ulong? Integer = null, string? Text = null, byte[]? Data = null, byte MethodFlags = 0)
    {
        public List<Node> Children { get; } = new();

        public Node Child(string name) => Children.Single(c => c.Name == name);

        public Node Value => Children.Single();
    }

    /// <summary>Parses a term list; a DSDT's AML starts after its 36-byte header.</summary>
    public static Node Parse(byte[] aml)
    {
        var reader = new AmlReader(aml);
        var root = new Node("Root");
        reader.TermList(root, aml.Length);
        return root;
    }

    private void TermList(Node parent, int end)
    {
        while (_position < end)
        {
            parent.Children.Add(Term());
        }

        if (_position != end)
        {
            throw new FormatException($"term list overran its package: ended at {_position}, expected {end}");
        }
    }

    private Node Term()
    {
        byte op = _aml[_position];
        switch (op)
        {
            case 0x08:
            {
                _position++;
                var node = new Node("Name", NameString());
                node.Children.Add(Term());
                return node;
            }

            case 0x10:
            {
                _position++;
                int end = PkgEnd();
                var node = new Node("Scope", NameString());
                TermList(node, end);
                return node;
            }

            case 0x5B when _aml[_position + 1] == 0x82:
            {
                _position += 2;
                int end = PkgEnd();
                var node = new Node("Device", NameString());
                TermList(node, end);
                return node;
            }

            case 0x14:
            {
                _position++;
                int end = PkgEnd();
                string name = NameString();
                var node = new Node("Method", name, MethodFlags: _aml[_position++]);
                TermList(node, end);
                return node;
            }

            case 0xA4:
            {
                _position++;
                var node = new Node("Return");
                node.Children.Add(Term());
                return node;
            }

            case 0x12:
            {
                _position++;
                int end = PkgEnd();
                int count = _aml[_position++];
                var node = new Node("Package");
                TermList(node, end);
                if (node.Children.Count != count)
                {
                    throw new FormatException($"package says {count} elements, holds {node.Children.Count}");
                }

                return node;
            }

            case 0x11:
            {
                _position++;
                int end = PkgEnd();
                Node size = Term();
                byte[] data = _aml[_position..end];
                if ((ulong)data.Length != size.Integer)
                {
                    throw new FormatException($"buffer says {size.Integer} bytes, holds {data.Length}");
                }

                _position = end;
                return new Node("Buffer", Data: data);
            }

            case 0x0D:
            {
                int start = ++_position;
                while (_aml[_position] != 0)
                {
                    _position++;
                }

                return new Node("String", Text: Encoding.ASCII.GetString(_aml, start, _position++ - start));
            }

            case 0x00:
                _position++;
                return new Node("Integer", Integer: 0);
            case 0x01:
                _position++;
                return new Node("Integer", Integer: 1);
            case 0xFF:
                _position++;
                return new Node("Integer", Integer: ulong.MaxValue);
            case 0x0A:
                return new Node("Integer", Integer: Little(1));
            case 0x0B:
                return new Node("Integer", Integer: Little(2));
            case 0x0C:
                return new Node("Integer", Integer: Little(4));
            case 0x0E:
                return new Node("Integer", Integer: Little(8));
            default:
                throw new FormatException($"unexpected AML opcode 0x{op:x2} at {_position}");
        }
    }

    private ulong Little(int bytes)
    {
        _position++;
        ulong value = 0;
        for (int i = 0; i < bytes; i++)
        {
            value |= (ulong)_aml[_position++] << (8 * i);
        }

        return value;
    }

    private int PkgEnd()
    {
        int start = _position;
        byte lead = _aml[_position++];
        int extra = lead >> 6;
        int length = extra == 0 ? lead & 0x3F : lead & 0x0F;
        for (int i = 0; i < extra; i++)
        {
            length |= _aml[_position++] << (4 + (8 * i));
        }

        return start + length;
    }

    private string NameString()
    {
        var name = new StringBuilder();
        while (_aml[_position] is 0x5C or 0x5E)
        {
            name.Append((char)_aml[_position++]);
        }

        int segments;
        switch (_aml[_position])
        {
            case 0x00:
                _position++;
                return name.ToString();
            case 0x2E:
                _position++;
                segments = 2;
                break;
            case 0x2F:
                segments = _aml[_position + 1];
                _position += 2;
                break;
            default:
                segments = 1;
                break;
        }

        for (int i = 0; i < segments; i++)
        {
            if (i > 0)
            {
                name.Append('.');
            }

            name.Append(Encoding.ASCII.GetString(_aml, _position, 4));
            _position += 4;
        }

        return name.ToString();
    }
}
