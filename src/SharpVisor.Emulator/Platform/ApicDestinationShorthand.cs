namespace SharpVisor.Emulator.Platform;

/// <summary>ICR bits 19:18.</summary>
public enum ApicDestinationShorthand
{
    None = 0,
    Self = 1,
    AllIncludingSelf = 2,
    AllExcludingSelf = 3,
}
