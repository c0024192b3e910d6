using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>The one entry point: detect the kernel's format, load it and everything it needs, return vCPU 0's state.</summary>
public static class BootLoader
{
    public static BootResult Load(GuestMemory memory, BootRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        return KernelImage.Detect(request.KernelPath).Load(memory, request);
    }
}
