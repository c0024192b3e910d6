namespace SharpVisor.Emulator;

/// <summary>RFLAGS bit masks.</summary>
public static class RflagsBits
{
    public const ulong Carry = 1 << 0;
    public const ulong Reserved1 = 1 << 1;
    public const ulong Parity = 1 << 2;
    public const ulong Adjust = 1 << 4;
    public const ulong Zero = 1 << 6;
    public const ulong Sign = 1 << 7;
    public const ulong Trap = 1 << 8;
    public const ulong Interrupt = 1 << 9;
    public const ulong Direction = 1 << 10;
    public const ulong Overflow = 1 << 11;
    public const ulong Iopl = 3 << 12;
    public const ulong NestedTask = 1 << 14;
    public const ulong Resume = 1 << 16;
    public const ulong Virtual8086 = 1 << 17;
    public const ulong AlignmentCheck = 1 << 18;
    public const ulong VirtualInterrupt = 1 << 19;
    public const ulong VirtualInterruptPending = 1 << 20;
    public const ulong Id = 1 << 21;

    /// <summary>The six status flags arithmetic instructions write.</summary>
    public const ulong Arithmetic = Carry | Parity | Adjust | Zero | Sign | Overflow;

    /// <summary>Every bit software can ever see set.</summary>
    public const ulong Defined = Arithmetic | Trap | Interrupt | Direction | Iopl | NestedTask | Resume | Virtual8086 | AlignmentCheck | VirtualInterrupt | VirtualInterruptPending | Id;
}
