namespace SharpVisor.Machine.CpuTemplates;

/// <summary>
/// What a CPU template does to one register's bits: Firecracker's "0b..." bitmap, where 1 sets a
/// bit, 0 clears it and x keeps what the accelerator gives.
/// </summary>
public readonly record struct TemplateBits(ulong Set, ulong Clear)
{
    /// <summary>The value the guest sees: <paramref name="value"/> with the template's bits forced.</summary>
    public ulong Apply(ulong value) => (value & ~Clear) | Set;

    /// <summary>
    /// Parses "0b" and up to <paramref name="width"/> characters of 0, 1 or x (the last one is bit 0;
    /// missing high characters keep their bits); false with the reason otherwise.
    /// </summary>
    public static bool TryParse(string text, int width, out TemplateBits bits, out string error)
    {
        bits = default;
        if (!text.StartsWith("0b", StringComparison.Ordinal))
        {
            error = $"bitmap '{text}' does not start with 0b";
            return false;
        }

        ReadOnlySpan<char> digits = text.AsSpan(2);
        if (digits.Length is 0 || digits.Length > width)
        {
            error = $"bitmap '{text}' has {digits.Length} bits; a {width}-bit register takes 1 to {width}";
            return false;
        }

        ulong set = 0;
        ulong clear = 0;
        for (int i = 0; i < digits.Length; i++)
        {
            ulong bit = 1UL << (digits.Length - 1 - i);
            switch (digits[i])
            {
                case '1':
                    set |= bit;
                    break;
                case '0':
                    clear |= bit;
                    break;
                case 'x' or 'X':
                    break;
                default:
                    error = $"bitmap '{text}' has '{digits[i]}'; only 0, 1 and x are allowed";
                    return false;
            }
        }

        bits = new TemplateBits(set, clear);
        error = "";
        return true;
    }
}
