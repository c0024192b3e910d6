namespace SharpVisor.Host.Vmm;

/// <summary>The accelerator a domain asks for.</summary>
public enum AcceleratorKind
{
    /// <summary>KVM where it is usable; the choice and the reason are reported.</summary>
    Auto,

    /// <summary>Hardware-assisted virtualization through /dev/kvm.</summary>
    Kvm,
}
