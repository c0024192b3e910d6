using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>Effective segment bases by segment number (ES..GS), plus slot 6 = 0 for unsegmented addresses.</summary>
[InlineArray(7)]
internal struct SegmentBases
{
    private ulong _element0;
}
