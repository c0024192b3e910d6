using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>The eight physical x87 data registers R0-R7 (ST(i) is R((TOP + i) mod 8)).</summary>
[InlineArray(8)]
internal struct FpuRegisters
{
    private Float80 _element0;
}
