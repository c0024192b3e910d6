namespace SharpVisor.Devices.Terminal;

/// <summary>
/// Splits the VMM's escape sequence out of console input, as QEMU's stdio mux does: Ctrl-A x
/// asks to quit, Ctrl-A Ctrl-A sends one Ctrl-A to the guest, and every other byte (including
/// a Ctrl-A followed by anything else) goes to the guest unchanged. The state carries across
/// calls, so a sequence split between two reads is still recognised.
/// </summary>
public sealed class ConsoleEscapeParser
{
    public const byte EscapeByte = 0x01; // Ctrl-A
    public const byte QuitByte = (byte)'x';

    private bool _escapePending;

    /// <summary>True after a Ctrl-A whose following byte has not arrived yet.</summary>
    public bool EscapePending => _escapePending;

    /// <summary>
    /// Filters <paramref name="input"/> into <paramref name="output"/>, which needs room for
    /// <c>input.Length + 1</c> bytes (a held-back Ctrl-A can come out with the next byte).
    /// </summary>
    /// <returns>True when the quit sequence was typed; input after it is discarded.</returns>
    public bool Process(ReadOnlySpan<byte> input, Span<byte> output, out int written)
    {
        if (output.Length < input.Length + 1)
        {
            throw new ArgumentException("the output needs room for input.Length + 1 bytes", nameof(output));
        }

        written = 0;
        foreach (byte b in input)
        {
            if (_escapePending)
            {
                _escapePending = false;
                if (b == QuitByte)
                {
                    return true;
                }

                if (b != EscapeByte)
                {
                    // Not a command: the Ctrl-A was meant for the guest.
                    output[written++] = EscapeByte;
                }

                output[written++] = b;
            }
            else if (b == EscapeByte)
            {
                _escapePending = true;
            }
            else
            {
                output[written++] = b;
            }
        }

        return false;
    }
}
