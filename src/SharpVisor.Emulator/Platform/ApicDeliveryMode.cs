namespace SharpVisor.Emulator.Platform;

/// <summary>The delivery-mode field shared by the ICR, LVT entries, I/O APIC redirection entries and MSI data.</summary>
public enum ApicDeliveryMode
{
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Reserved3 = 3,
    Nmi = 4,
    Init = 5,
    StartUp = 6,
    ExtInt = 7,
}
