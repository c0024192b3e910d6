using System.Runtime.InteropServices;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm;

/// <summary>
/// The KVM subsystem, through an open /dev/kvm: API version check, capabilities, the size of
/// the per-vCPU kvm_run mapping, supported CPUID, and VM creation.
/// </summary>
public sealed unsafe class KvmSystem : IDisposable
{
    public const string DefaultDevicePath = "/dev/kvm";

    /// <summary>The only KVM API version there has ever been (KVM_API_VERSION).</summary>
    public const int ApiVersion = 12;

    private const int E2BIG = 7;
    private int _fd;

    private KvmSystem(int fd, string devicePath, int vcpuMmapSize)
    {
        _fd = fd;
        DevicePath = devicePath;
        VcpuMmapSize = vcpuMmapSize;
    }

    public string DevicePath { get; }

    /// <summary>Bytes to mmap from each vCPU fd: kvm_run plus the port-I/O data page(s).</summary>
    public int VcpuMmapSize { get; }

    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(KvmSystem));

    /// <summary>Opens the KVM device and checks it speaks API version 12; throws <see cref="KvmUnavailableException"/> otherwise.</summary>
    public static KvmSystem Open(string devicePath = DefaultDevicePath)
    {
        int fd = LibC.Open(devicePath, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw KvmUnavailableException.ForOpenError(devicePath, Marshal.GetLastPInvokeError());
        }

        try
        {
            int version = LibC.Ioctl(fd, KvmIoctls.GetApiVersion, 0);
            if (version < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new KvmUnavailableException($"{devicePath} is not a KVM device: KVM_GET_API_VERSION failed: {LibC.Strerror(errno)}");
            }

            if (version != ApiVersion)
            {
                throw new KvmUnavailableException($"{devicePath} speaks KVM API version {version}, SharpVisor needs {ApiVersion}");
            }

            int mmapSize = LibC.Ioctl(fd, KvmIoctls.GetVcpuMmapSize, 0);
            if (mmapSize < sizeof(KvmRun))
            {
                throw new KvmUnavailableException($"{devicePath}: KVM_GET_VCPU_MMAP_SIZE returned {mmapSize}, smaller than kvm_run");
            }

            return new KvmSystem(fd, devicePath, mmapSize);
        }
        catch
        {
            LibC.Close(fd);
            throw;
        }
    }

    /// <summary>KVM_CHECK_EXTENSION: 0 when the capability is missing, else 1 or a capability-specific number.</summary>
    public int CheckExtension(KvmCapability capability)
    {
        int result = LibC.Ioctl(Fd, KvmIoctls.CheckExtension, (nint)capability);
        return Math.Max(result, 0);
    }

    /// <summary>KVM_GET_SUPPORTED_CPUID: every CPUID leaf and feature bit KVM can give a guest on this host.</summary>
    public KvmCpuidEntry2[] GetSupportedCpuid()
    {
        for (int capacity = 128; capacity <= 4096; capacity *= 2)
        {
            nuint bytes = (nuint)(sizeof(KvmCpuid2) + (capacity * sizeof(KvmCpuidEntry2)));
            var header = (KvmCpuid2*)NativeMemory.AllocZeroed(bytes);
            try
            {
                header->NEnt = (uint)capacity;
                if (LibC.Ioctl(Fd, KvmIoctls.GetSupportedCpuid, header) < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == E2BIG)
                    {
                        continue;
                    }

                    throw new LinuxException("KVM_GET_SUPPORTED_CPUID", errno);
                }

                var entries = (KvmCpuidEntry2*)(header + 1);
                return new ReadOnlySpan<KvmCpuidEntry2>(entries, (int)Math.Min(header->NEnt, (uint)capacity)).ToArray();
            }
            finally
            {
                NativeMemory.Free(header);
            }
        }

        throw new InvalidOperationException("KVM_GET_SUPPORTED_CPUID reports more than 4096 entries");
    }

    /// <summary>KVM_CREATE_VM with the default machine type; the caller owns the returned fd.</summary>
    public int CreateVmFd()
    {
        // KVM_CREATE_VM can fail with EINTR when a signal arrives while KVM sets up the VM; retry.
        for (int attempt = 0; ; attempt++)
        {
            int fd = LibC.Ioctl(Fd, KvmIoctls.CreateVm, 0);
            if (fd >= 0)
            {
                return fd;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != LibC.EINTR || attempt >= 10)
            {
                throw new LinuxException("KVM_CREATE_VM", errno);
            }
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            LibC.Close(_fd);
            _fd = -1;
        }
    }
}
