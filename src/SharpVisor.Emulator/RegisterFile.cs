using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>
/// The general registers, laid out so decoded operands can address them by byte offset
/// (AH is offset 1, R15 is offset 120). Slot 16 always reads zero (absent base/index) and
/// slot 17 holds the RIP of the executing block (base of RIP-relative operands).
/// </summary>
[InlineArray(Slots)]
internal struct RegisterFile
{
    public const int Slots = 18;
    public const int Zero = 16;
    public const int BlockRip = 17;

    private ulong _element0;
}
