namespace SharpVisor.Host.Vmm;

/// <summary>The accelerator a domain asks for.</summary>
public enum AcceleratorKind
{
    /// <summary>
    /// KVM where it is hardware-backed; the emulator where /dev/kvm is missing, unusable or
    /// PVM-backed. The choice and the reason are reported.
    /// </summary>
    Auto,

    /// <summary>Hardware-assisted virtualization through /dev/kvm.</summary>
    Kvm,

    /// <summary>SharpVisor's own x86-64 emulator: full virtualization in software.</summary>
    Emulator,
}
