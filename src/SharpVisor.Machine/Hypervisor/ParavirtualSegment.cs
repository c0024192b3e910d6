namespace SharpVisor.Machine.Hypervisor;

/// <summary>Segment registers by their encoding (the order of the ModRM reg field).</summary>
public enum ParavirtualSegment
{
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}
