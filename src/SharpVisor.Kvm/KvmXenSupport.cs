using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm;

/// <summary>
/// What KVM_CHECK_EXTENSION(KVM_CAP_XEN_HVM) answered: not a yes/no but the KVM_XEN_HVM_CONFIG_*
/// flags this KVM supports. SharpVisor's Xen layer rides on KVM (<see cref="KvmXenHypervisor"/>)
/// when the flags it uses are all there: <see cref="RequiredFlags"/>.
/// </summary>
public sealed record KvmXenSupport(uint Flags, string Where)
{
    /// <summary>
    /// HYPERCALL_MSR (KVM writes the hypercall page when the guest writes MSR 0x40000000),
    /// INTERCEPT_HCALL (every hypercall exits to SharpVisor.Xen as KVM_EXIT_XEN) and SHARED_INFO
    /// (KVM knows shared_info and each vcpu_info, so it injects the domain's callback vector while
    /// evtchn_upcall_pending is set and keeps vcpu_time_info current). Linux 5.12 and later.
    /// </summary>
    public const uint RequiredFlags = KvmXenHvmConfig.FlagHypercallMsr | KvmXenHvmConfig.FlagInterceptHcall | KvmXenHvmConfig.FlagSharedInfo;

    private static readonly (uint Flag, string Name)[] s_names =
    [
        (KvmXenHvmConfig.FlagHypercallMsr, "HYPERCALL_MSR"),
        (KvmXenHvmConfig.FlagInterceptHcall, "INTERCEPT_HCALL"),
        (KvmXenHvmConfig.FlagSharedInfo, "SHARED_INFO"),
        (KvmXenHvmConfig.FlagRunstate, "RUNSTATE"),
        (KvmXenHvmConfig.FlagEvtchn2Level, "EVTCHN_2LEVEL"),
        (KvmXenHvmConfig.FlagEvtchnSend, "EVTCHN_SEND"),
    ];

    /// <summary>All of <see cref="RequiredFlags"/> are there.</summary>
    public bool IsUsable => (Flags & RequiredFlags) == RequiredFlags;

    /// <summary>EVTCHN_SEND: KVM also takes the vCPUs' Xen ids (KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID), which SharpVisor then sets.</summary>
    public bool HasEvtchnSend => (Flags & KvmXenHvmConfig.FlagEvtchnSend) != 0;

    /// <summary>The required flags this KVM lacks, as the header names them.</summary>
    public IReadOnlyList<string> MissingFlags => Names(RequiredFlags & ~Flags);

    /// <summary>"KVM_CAP_XEN_HVM = 0x3f (HYPERCALL_MSR, ...)", or "= 0" when KVM has no Xen support.</summary>
    public string Describe() =>
        Flags == 0 ? "KVM_CAP_XEN_HVM = 0" : $"KVM_CAP_XEN_HVM = 0x{Flags:x} ({string.Join(", ", Names(Flags))})";

    /// <summary>Asks the KVM device; a device that does not open reports no flags, and says why in <see cref="Where"/>.</summary>
    public static KvmXenSupport Probe(string devicePath = KvmSystem.DefaultDevicePath)
    {
        try
        {
            using KvmSystem system = KvmSystem.Open(devicePath);
            return new KvmXenSupport((uint)system.CheckExtension(KvmCapability.XenHvm), devicePath);
        }
        catch (KvmUnavailableException e)
        {
            return new KvmXenSupport(0, e.Message);
        }
    }

    private static string[] Names(uint flags)
    {
        var names = new List<string>();
        foreach ((uint flag, string name) in s_names)
        {
            if ((flags & flag) != 0)
            {
                names.Add(name);
            }
        }

        uint unknown = flags & ~s_names.Aggregate(0u, (all, n) => all | n.Flag);
        if (unknown != 0)
        {
            names.Add($"0x{unknown:x}");
        }

        return names.ToArray();
    }
}
