using SharpVisor.Memory;

namespace SharpVisor.Machine;

/// <summary>A way to run guest code: hardware-assisted (KVM) or software (the emulator).</summary>
public interface IAccelerator
{
    /// <summary>Short name for reports: "kvm", "emulator".</summary>
    string Name { get; }

    /// <summary>Builds a machine over <paramref name="memory"/>; the VM takes ownership of nothing.</summary>
    IVirtualMachine CreateVirtualMachine(GuestMemory memory, int vcpuCount);
}
