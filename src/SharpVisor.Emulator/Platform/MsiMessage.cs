namespace SharpVisor.Emulator.Platform;

/// <summary>
/// Decodes the x86 MSI format (Intel SDM vol. 3, "Message Signalled Interrupts"): the address
/// 0xFEEx_xxxx carries the destination ID (bits 19:12), the redirection hint (bit 3) and the
/// destination mode (bit 2); the data carries the vector (7:0), delivery mode (10:8), level (14)
/// and trigger mode (15); its reserved upper half is ignored, as KVM does.
/// </summary>
public static class MsiMessage
{
    public const ulong AddressBase = 0xFEE0_0000;
    public const ulong AddressMask = 0xFFF0_0000;

    public const int DestinationShift = 12;
    public const ulong RedirectionHint = 1UL << 3;
    public const ulong LogicalDestination = 1UL << 2;

    public const uint DataLevelTriggered = 1u << 15;
    public const uint DataAssert = 1u << 14;

    /// <summary>Encodes an MSI the way a device (or a test) writes it.</summary>
    public static (ulong Address, uint Data) Encode(byte destination, int vector, ApicDeliveryMode mode = ApicDeliveryMode.Fixed, bool logical = false, bool redirectionHint = false, bool levelTriggered = false)
    {
        ulong address = AddressBase | ((ulong)destination << DestinationShift) | (logical ? LogicalDestination : 0) | (redirectionHint ? RedirectionHint : 0);
        uint data = (uint)(vector & 0xFF) | ((uint)mode << 8) | DataAssert | (levelTriggered ? DataLevelTriggered : 0);
        return (address, data);
    }

    /// <summary>Decodes a guest-programmed MSI; false (with a reason) when it cannot be an interrupt.</summary>
    public static bool TryDecode(ulong address, uint data, out ApicMessage message, out string? error)
    {
        message = default;
        if ((address & ~0xFFFF_FFFFUL) != 0 || (address & AddressMask) != AddressBase)
        {
            error = $"MSI address 0x{address:x} is outside the 0xFEExxxxx interrupt window";
            return false;
        }

        var mode = (ApicDeliveryMode)((data >> 8) & 7);
        if (mode is ApicDeliveryMode.Reserved3 or ApicDeliveryMode.StartUp)
        {
            error = $"MSI delivery mode {mode} is reserved";
            return false;
        }

        bool logical = (address & LogicalDestination) != 0;

        // The redirection hint makes the destinations arbitrate by priority (as KVM treats it).
        if ((address & RedirectionHint) != 0 && mode == ApicDeliveryMode.Fixed)
        {
            mode = ApicDeliveryMode.LowestPriority;
        }

        message = new ApicMessage(
            Vector: (int)(data & 0xFF),
            DeliveryMode: mode,
            LogicalDestination: logical,
            Destination: (uint)((address >> DestinationShift) & 0xFF),
            LevelTriggered: (data & DataLevelTriggered) != 0,
            Assert: (data & DataAssert) != 0);
        error = null;
        return true;
    }
}
