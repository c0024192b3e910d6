using SharpVisor.Host.Domains;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests.Fakes;

/// <summary>
/// A machine that runs no guest: it records what the VMM asked of it, echoes console input
/// to its serial output, and stops when told to (or on the power button when
/// <see cref="ObeysPowerButton"/>, on Ctrl-Alt-Del as <see cref="CtrlAltDelReaction"/> says), so
/// the API layer can be tested without a hypervisor.
/// </summary>
public sealed class FakeDomainMachine : IDomainMachine
{
    private readonly Stream _serialOutput;
    private int _stopped;

    public FakeDomainMachine(MachineConfiguration spec, Stream serialOutput)
    {
        Spec = spec;
        _serialOutput = serialOutput;
        if (spec.Protection is { } policy)
        {
            // A real protector over a little memory: the test locks it and reports violations itself.
            _protectedMemory = SharpVisor.Memory.GuestMemory.CreateRam(2 << 20);
            Protector = new SharpVisor.Security.KernelProtector(policy, null, _protectedMemory, null);
            ProtectionEvents = new ProtectionEventLog(Protector);
        }
    }

    private readonly SharpVisor.Memory.GuestMemory? _protectedMemory;

    public SharpVisor.Security.KernelProtector? Protector { get; }

    public ProtectionEventLog? ProtectionEvents { get; }

    public event Action<DomainStopInfo>? Stopped;

    public MachineConfiguration Spec { get; }

    public string AcceleratorName => "fake";

    public bool ObeysPowerButton { get; set; }

    /// <summary>How the guest answers Ctrl-Alt-Del: null ignores it, Reset reboots, PowerOff powers off.</summary>
    public MachineStopReason? CtrlAltDelReaction { get; set; }

    /// <summary>When set, the keyboard refuses the keys (the guest disabled it) with this message.</summary>
    public string? KeyboardRefusal { get; set; }

    public bool IsStarted { get; private set; }

    public bool IsPaused { get; private set; }

    public int CtrlAltDelCount { get; private set; }

    public int PowerButtonCount { get; private set; }

    public long? BalloonTarget { get; private set; }

    public bool IsDisposed { get; private set; }

    public void Start()
    {
        IsStarted = true;
        SerialWrite($"fake guest {Spec.Name} booting: {Spec.CommandLine}\n");
    }

    public void Pause() => IsPaused = true;

    public void Resume() => IsPaused = false;

    public void PressPowerButton()
    {
        PowerButtonCount++;
        if (ObeysPowerButton)
        {
            Finish(MachineStopReason.PowerOff, 0, "guest powered off (ACPI S5)");
        }
    }

    public void SendCtrlAltDel()
    {
        if (KeyboardRefusal is not null)
        {
            throw new InvalidOperationException(KeyboardRefusal);
        }

        CtrlAltDelCount++;
        switch (CtrlAltDelReaction)
        {
            case MachineStopReason.Reset:
                Reset("guest pulsed the i8042 reset line");
                break;
            case MachineStopReason.PowerOff:
                Finish(MachineStopReason.PowerOff, 0, "guest powered off (ACPI S5)");
                break;
        }
    }

    public void Stop(string detail) => Finish(MachineStopReason.PowerOff, 0, detail);

    public void Reset(string detail) => Finish(MachineStopReason.Reset, 0, detail);

    public void Crash(string detail) => Finish(MachineStopReason.Crashed, 2, detail);

    public void WriteConsoleInput(ReadOnlySpan<byte> data) => _serialOutput.Write(data);

    public void SetBalloonTarget(long amountMib) => BalloonTarget = amountMib;

    public int? BalloonStatisticsInterval { get; private set; }

    /// <summary>A guest that inflated exactly to the target and reports 100 MiB free.</summary>
    public BalloonState ReadBalloon() => new(
        (BalloonTarget ?? Spec.Balloon?.InitialTargetMib ?? 0) * BalloonState.PagesPerMib,
        (BalloonTarget ?? Spec.Balloon?.InitialTargetMib ?? 0) * BalloonState.PagesPerMib,
        new Dictionary<ushort, ulong> { [4] = 100UL << 20, [5] = Spec.MemorySize });

    public void SetBalloonStatisticsInterval(int seconds) => BalloonStatisticsInterval = seconds;

    /// <summary>PATCH /drives and /network-interfaces calls that reached the running machine.</summary>
    public List<string> Updates { get; } = new();

    public void UpdateDrive(string id, string? path, SharpVisor.Host.Vmm.RateLimitConfiguration? rateLimit) =>
        Updates.Add($"drive {id} path={path} limit={rateLimit}");

    public void UpdateNetworkInterface(string id, SharpVisor.Host.Vmm.RateLimitConfiguration? rx, SharpVisor.Host.Vmm.RateLimitConfiguration? tx) =>
        Updates.Add($"nic {id} rx={rx} tx={tx}");

    public DomainCounters ReadCounters() => new()
    {
        Exits = new Dictionary<string, long> { ["io"] = 10, ["hlt"] = 3 },
        // A fixed device, and one per drive named after its id (as the real machine names them).
        Devices = [new DeviceCounters("virtio-blk0", 4, 4096, 1, 512), .. Spec.Disks.Select(d => new DeviceCounters(d.Id!, 4, 4096, 1, 512))],
        BalloonActualMib = BalloonTarget,
        ProtectionViolations = Protector is null
            ? null
            : Enum.GetValues<SharpVisor.Machine.Protection.ProtectionViolationKind>().ToDictionary(SharpVisor.Security.KernelProtector.KindName, Protector.Violations),
    };

    public void SerialWrite(string text) => _serialOutput.Write(System.Text.Encoding.UTF8.GetBytes(text));

    public void Dispose()
    {
        IsDisposed = true;
        Protector?.Dispose();
        _protectedMemory?.Dispose();
    }

    private void Finish(MachineStopReason reason, int status, string detail)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            Stopped?.Invoke(new DomainStopInfo(reason, status, detail));
        }
    }
}
