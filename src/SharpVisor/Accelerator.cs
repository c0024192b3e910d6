namespace SharpVisor;

/// <summary>What runs the guest's instructions.</summary>
public enum Accelerator
{
    /// <summary>KVM where the host's CPU virtualizes in hardware, else SharpVisor's emulator (the reason is in <see cref="VirtualMachine.AcceleratorDescription"/>).</summary>
    Auto,

    /// <summary>The kernel's KVM (/dev/kvm); creating the machine fails when it is unavailable.</summary>
    Kvm,

    /// <summary>SharpVisor's own x86-64 emulator: runs anywhere, no privileges needed.</summary>
    Emulator,
}
