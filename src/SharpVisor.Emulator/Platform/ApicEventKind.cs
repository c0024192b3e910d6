namespace SharpVisor.Emulator.Platform;

/// <summary>What a local APIC hands its CPU, in the order the CPU must take them.</summary>
public enum ApicEventKind
{
    None,

    /// <summary>INIT: put the CPU in its INIT state (an AP then waits for a SIPI; a BSP starts at the reset vector).</summary>
    Init,

    /// <summary>STARTUP: leave wait-for-SIPI in real mode at CS = vector &lt;&lt; 8, IP = 0.</summary>
    StartUp,

    /// <summary>NMI: deliver vector 2.</summary>
    Nmi,

    /// <summary>A maskable interrupt, already acknowledged (in service): deliver its vector.</summary>
    Interrupt,
}
