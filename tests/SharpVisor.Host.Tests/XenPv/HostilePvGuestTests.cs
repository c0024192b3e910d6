using System.Globalization;
using System.Text.RegularExpressions;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.Xen;

namespace SharpVisor.Host.Tests.XenPv;

/// <summary>
/// The hostile PV guest (issue 12): a tiny PV kernel (<see cref="HostilePvGuest"/>) booted by the
/// VMM in process with <c>--xen pv</c> on the emulator tries to map frames it does not own, to make
/// page-table frames writable, to pin tables that map themselves writable, to install ring-0 and
/// system descriptors, to iret to ring 0, to give back frames in use, to have the hypervisor write
/// into its page tables (shared_info placed on one, grant copies into one), to grant-map its own L4
/// writable and to overwrite a grant map's entry. Each call's result is
/// asserted against Xen's answer (xen/arch/x86/mm.c, pv/descriptor-tables.c, pv/iret.c), the
/// domain runs on to its own power-off, and the VMM's counters show every refusal by reason.
/// </summary>
public sealed partial class HostilePvGuestTests
{
    private const long Ebusy = -XenErrno.EBUSY;
    private const long Einval = -XenErrno.EINVAL;
    private const long Eperm = -XenErrno.EPERM;

    [GeneratedRegex(@"^([a-z0-9-]+)=([0-9a-f]{16})$", RegexOptions.Multiline)]
    private static partial Regex ResultLine();

    [Fact]
    public void EachAttackIsRefusedWithXensAnswer_TheDomainRunsOn_AndTheCountersShowTheRefusals()
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("hostile-pv.elf");
        File.WriteAllBytes(kernel, HostilePvGuest.Build());
        var console = new CapturedOutput();
        using VirtualMachineMonitor vmm = VirtualMachineMonitor.Create(new MachineConfiguration
        {
            KernelPath = kernel,
            CommandLine = string.Empty,
            MemorySize = 32UL << 20,
            Accelerator = AcceleratorKind.Emulator,
            Xen = XenMode.Pv,
            VcpuCount = 2,
            SerialOutput = console,
        });

        // The guest stops itself (SCHEDOP_shutdown): the timeout is only a bound for a broken build.
        RunOutcome outcome = vmm.Run(TimeSpan.FromMinutes(5));
        Dictionary<string, long> results = ResultLine().Matches(console.Text)
            .ToDictionary(m => m.Groups[1].Value, m => (long)ulong.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        Assert.True(results.ContainsKey("alive"), $"the guest did not reach its end ({outcome.Reason}: {outcome.Detail}); console:\n{console.Text}");
        Assert.Equal(MachineStopReason.PowerOff, outcome.Reason);

        var expected = new Dictionary<string, long>
        {
            // get_page_from_l1e: another owner's frame is could_not_pin (-EBUSY), a frame past memory is MMIO the domain may not map (-EPERM).
            ["map-hypervisor-frame"] = Ebusy,
            ["map-m2p-writable"] = Ebusy,
            ["map-past-memory"] = Eperm,
            // do_mmu_update / MMUEXT_PIN_*: the frame holding the entry (or pinned) is not the domain's (-EINVAL).
            ["update-hypervisor-frame"] = Einval,
            ["machphys-hypervisor-frame"] = Einval,
            ["pin-hypervisor-frame"] = Einval,
            // shared_info and the XenStore ring keep a writable type reference (share_xen_page_with_guest,
            // xenstored's mapping): they never become page tables the hypervisor would then write unvalidated.
            ["store-readonly"] = 0,
            ["pin-store-ring"] = Einval,
            ["store-restored"] = 0,
            ["pin-shared-info"] = Einval,
            // mod_l4_entry: Xen's slots are not the guest's (-EINVAL); get_page_from_l4e of a frame not owned (-EINVAL).
            ["l4-hypervisor-slot"] = Einval,
            ["l4-entry-m2p"] = Einval,
            // A writable mapping of a page table in use: could_not_pin; read-only is allowed and reads the table.
            ["map-l4-writable"] = Ebusy,
            ["uvm-l4-writable"] = Ebusy,
            ["uvm-l4-readonly"] = 0,
            ["l4-readable"] = 1,
            ["s-restored"] = 0,
            // Cache attributes in an L1 entry of an unprivileged domain, PSE in an L2 entry: the disallow masks.
            ["pte-cache-bits"] = Einval,
            ["l2-superpage"] = Einval,
            // alloc_l1_table / alloc_l4_table fail with get_page_from_l1e's -EBUSY; fixed, the same tables pin.
            ["x-readonly"] = 0,
            ["pin-l1-self-writable"] = Ebusy,
            ["x-fixed"] = 0,
            ["pin-l1-fixed"] = 0,
            ["unpin-l1"] = 0,
            ["t4-readonly"] = 0,
            ["t3-readonly"] = 0,
            ["t2-readonly"] = 0,
            ["t1-readonly"] = 0,
            ["pin-l4-self-writable"] = Ebusy,
            ["t-fixed"] = 0,
            ["pin-l4-fixed"] = 0,
            // new_guest_cr3: a frame that cannot take the L4 type (-EINVAL).
            ["new-baseptr-l3"] = Einval,
            ["new-baseptr-writable"] = Einval,
            ["unpin-l4"] = 0,
            // MMUEXT_UNPIN_TABLE of the L4 in CR3 succeeds (CR3 keeps its own reference); a second unpin is -EINVAL.
            ["unpin-cr3"] = 0,
            ["after-unpin"] = 1,
            ["unpin-cr3-again"] = Einval,
            ["repin-cr3"] = 0,
            // set_gdt: a frame mapped writable cannot become a descriptor page; a TSS fails check_descriptor;
            // a ring-0 code descriptor passes with its DPL raised to 3.
            ["gdt-hypervisor-frame"] = Einval,
            ["update-descriptor-hypervisor-frame"] = Einval,
            ["gdt-writable-frame"] = Einval,
            ["g-readonly"] = 0,
            ["gdt-tss"] = Einval,
            ["clear-tss"] = 0,
            ["gdt-ring0-code"] = 0,
            ["own-cs"] = 0x000B,
            ["map-gdt-writable"] = Ebusy,
            ["update-descriptor-ring0"] = 0,
            ["descriptor-read-back"] = unchecked((long)(HostilePvGuest.RingZeroCode | (3UL << 45) | (1UL << 40))),
            ["update-descriptor-tss"] = Einval,
            ["update-descriptor-l4"] = Einval,
            // do_iret: CS and SS forced to RPL 3, IOPL cleared, RAX from the frame.
            ["iret-rax"] = 0x1234,
            ["iret-cs"] = 0xE033,
            ["iret-iopl"] = 0,
            // An iret to a CS that does not load: the guest's #GP (error code the selector) at the iret's target, the domain runs on.
            ["set-trap-table"] = 0,
            ["iret-bad-cs-error"] = 0x18,
            ["iret-bad-cs-rip"] = 1,
            ["after-bad-iret-cs"] = 0xE033,
            // add_to_physmap in a PV domain (not translated): -EACCES. gnttab_copy into a frame that cannot
            // take the writable type (the L4, the GDT frame): GNTST_general_error; into our own page: okay.
            ["add-to-physmap-l4"] = -XenErrno.EACCES,
            ["grant-copy-into-l4"] = GrantStatus.GeneralError,
            ["grant-copy-into-gdt"] = GrantStatus.GeneralError,
            ["grant-copy-own-page"] = GrantStatus.Okay,
            // decrease_reservation / populate_physmap: no extent done for a page table in use or the hypervisor's frame
            // (nor a populate while nothing was given back); a free page of ours goes, once; populated again, its pfn
            // gets a new machine frame, zeroed, which the M2P names the pfn of.
            ["decrease-l4"] = 0,
            ["decrease-m2p"] = 0,
            ["populate-l4"] = 0,
            ["x-unmapped"] = 0,
            ["decrease-free"] = 1,
            ["decrease-twice"] = 0,
            ["populate-x"] = 1,
            ["populate-x-m2p"] = 6,
            ["x-remapped"] = 0,
            ["x-contents"] = 0,
            // Grant maps into our own tables (docs/xen.md, "Grant mapping", the PV mapper): a writable map of
            // a grant of the L4 is GNTST_bad_page (it cannot take the writable type), no frame in the pool to
            // stand in GNTST_no_device_space, an entry in the L4 GNTST_general_error; with a page given back,
            // S maps read-only and reads as S; a map over it and an ordinary update of its entry are refused;
            // the unmap is okay once, then GNTST_bad_handle.
            ["grant-setup"] = 0,
            ["grant-frame-mapped"] = 0,
            ["grant-map-own-l4"] = GrantStatus.BadPage,
            ["grant-map-no-frame"] = GrantStatus.NoDeviceSpace,
            ["grant-map-into-l4"] = GrantStatus.GeneralError,
            ["pool-unmapped"] = 0,
            ["pool-given"] = 1,
            ["grant-map"] = GrantStatus.Okay,
            ["grant-map-reads-s"] = 1,
            ["grant-map-over-map"] = GrantStatus.GeneralError,
            ["granted-pte-overwrite"] = Einval,
            ["grant-unmap"] = GrantStatus.Okay,
            ["grant-unmap-twice"] = GrantStatus.BadHandle,
            // vCPU 1 from a context whose DS does not load: it starts in its failsafe callback; the frame names the
            // context's selectors (DS 0x63, ES 0), its CS as the kernel's with the event mask (1) above bit 32,
            // RFLAGS with IF clear (events were masked), its stack and SS, and the RIP it would have started at.
            ["vcpu1-initialise"] = 0,
            ["vcpu1-up"] = 0,
            ["failsafe-ran"] = 1,
            ["failsafe-ds"] = HostilePvGuest.BadDataSelector,
            ["failsafe-es"] = 0,
            ["failsafe-cs"] = 0x1_0000_E030,
            ["failsafe-rflags"] = 0x2,
            ["failsafe-rsp"] = unchecked((long)(HostilePvGuest.VirtBase + 0xE000)),
            ["failsafe-ss"] = 0xE02B,
            ["failsafe-rip"] = 1,
            ["alive"] = 1,
        };
        foreach ((string name, long value) in expected)
        {
            Assert.True(results.TryGetValue(name, out long actual), $"no result for {name}; console:\n{console.Text}");
            Assert.True(value == actual, $"{name}: expected {value}, got {actual}");
        }

        // lar of selector 8 after set_gdt: present, DPL 3 (check_descriptor's fix-up), a code segment.
        long access = results["lar"];
        Assert.Equal(3, (access >> 13) & 3);
        Assert.Equal(0x9800, access & 0x9800);

        IReadOnlyDictionary<string, long> counters = vmm.ExitCounts();
        long Count(string name) => counters.GetValueOrDefault($"xen-{name}");
        Assert.Equal(6, Count("pv-refused-l1-entry"));
        Assert.Equal(2, Count("pv-refused-bad-flags"));
        Assert.Equal(1, Count("pv-refused-hypervisor-slot"));
        Assert.Equal(1, Count("pv-refused-l4-entry"));
        Assert.Equal(4, Count("pv-refused-pin-invalid"));
        Assert.Equal(2, Count("pv-refused-base-invalid"));
        Assert.Equal(1, Count("pv-refused-unpin-not-pinned"));
        Assert.Equal(1, Count("pv-refused-type-SegmentDescriptor"));
        Assert.Equal(1, Count("pv-refused-gdt-descriptor"));
        Assert.Equal(3, Count("pv-refused-descriptor"));
        Assert.Equal(1, Count("pv-refused-table-not-owned"));
        Assert.Equal(1, Count("pv-refused-machphys-not-owned"));
        Assert.Equal(1, Count("pv-refused-pin-not-owned"));
        Assert.Equal(1, Count("pv-refused-type-not-owned"));
        Assert.Equal(4, Count("balloon-refused"));
        Assert.Equal(1, Count("pv-refused-reservation-frame-in-use"));
        Assert.Equal(2, Count("pv-refused-release-not-owned"));
        Assert.Equal(2, Count("pv-refused-write-typed-frame"));
        Assert.Equal(1, Count("pv-refused-iret-selector"));
        Assert.Equal(1, Count("pv-failsafe"));
        Assert.Equal(0, Count("pv-domain-crash"));
        Assert.Equal(1, Count("pv-refused-granted-pte"));
        Assert.Equal(1, Count("pv-grant-maps"));
        Assert.Equal(1, Count("pv-grant-unmaps"));
        Assert.Equal(1, Count("grant-map-status-9"));
        Assert.Equal(1, Count("grant-map-status-7"));
        Assert.Equal(2, Count("grant-map-status-1"));
        Assert.Equal(1, Count("grant-unmap-status-4"));
    }
}
