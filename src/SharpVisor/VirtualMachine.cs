using SharpVisor.Boot;
using SharpVisor.Host.Vmm;
using SharpVisor.Kvm;
using SharpVisor.Machine;

namespace SharpVisor;

/// <summary>
/// A virtual machine in this process: <see cref="Create"/> builds it and loads the kernel,
/// <see cref="Start"/> runs it on threads of its own, <see cref="Console"/> is its serial
/// console, <see cref="WaitForExitAsync"/> says how it ended. Pause, resume and stop may be
/// called from any thread. Dispose stops a guest that is still running.
/// </summary>
/// <example>
/// <code>
/// using var vm = VirtualMachine.Create(new VirtualMachineOptions
/// {
///     KernelPath = "vmlinuz", InitrdPath = "initrd.img", CommandLine = "console=ttyS0",
/// });
/// vm.Start();
/// await vm.Console.CopyToAsync(Console.OpenStandardOutput());
/// VirtualMachineExit exit = await vm.WaitForExitAsync();
/// </code>
/// </example>
public sealed class VirtualMachine : IDisposable, IAsyncDisposable
{
    private readonly object _lock = new();
    private readonly VirtualMachineMonitor _monitor;
    private readonly ConsoleBuffer _consoleOutput;
    private readonly TaskCompletionSource<VirtualMachineExit> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _runThread;
    private VirtualMachineState _state = VirtualMachineState.Created;
    private bool _disposed;

    private VirtualMachine(VirtualMachineMonitor monitor, ConsoleBuffer consoleOutput)
    {
        _monitor = monitor;
        _consoleOutput = consoleOutput;
        Console = new ConsoleStream(consoleOutput, monitor.Serial, () => _exit.Task.IsCompleted);
        AcceleratorDescription = $"{monitor.Accelerator.Accelerator.Name}: {monitor.Accelerator.Reason}";
    }

    /// <summary>The serial console (COM1, the guest's ttyS0): read the guest's output, write its input.</summary>
    public Stream Console { get; }

    /// <summary>Which accelerator runs the guest and why, e.g. "emulator: /dev/kvm is missing".</summary>
    public string AcceleratorDescription { get; }

    /// <summary>Where the machine is in its life: created, running, paused, stopped.</summary>
    public VirtualMachineState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Console output dropped because <see cref="Console"/> was not read fast enough (see <see cref="VirtualMachineOptions.ConsoleBufferBytes"/>).</summary>
    public long ConsoleBytesDropped => _consoleOutput.DroppedBytes;

    /// <summary>
    /// Builds the machine and loads the kernel, without running it. A configuration that cannot
    /// work (a missing kernel, no KVM when KVM is asked for, absurd sizes) throws
    /// <see cref="VirtualMachineException"/> with a one-line reason.
    /// </summary>
    public static VirtualMachine Create(VirtualMachineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MemoryMib < 1)
        {
            throw new VirtualMachineException($"memory size {options.MemoryMib} MiB: must be at least 1 MiB");
        }

        if (options.ConsoleBufferBytes < 1)
        {
            throw new VirtualMachineException($"console buffer of {options.ConsoleBufferBytes} bytes: must be at least 1 byte");
        }

        var consoleOutput = new ConsoleBuffer(options.ConsoleBufferBytes);
        try
        {
            VirtualMachineMonitor monitor = VirtualMachineMonitor.Create(new MachineConfiguration
            {
                KernelPath = options.KernelPath,
                InitrdPath = options.InitrdPath,
                CommandLine = options.CommandLine,
                KernelDecompressor = options.KernelDecompressor == KernelDecompressor.Guest ? SharpVisor.Boot.KernelDecompressor.Guest : SharpVisor.Boot.KernelDecompressor.Vmm,
                MemorySize = (ulong)options.MemoryMib << 20,
                VcpuCount = options.VcpuCount,
                Accelerator = options.Accelerator switch
                {
                    Accelerator.Kvm => AcceleratorKind.Kvm,
                    Accelerator.Emulator => AcceleratorKind.Emulator,
                    _ => AcceleratorKind.Auto,
                },
                Disks = options.Disks.Select(ToConfiguration).ToArray(),
                NetworkInterfaces = options.NetworkInterfaces.Select(ToConfiguration).ToArray(),
                SerialOutput = new ConsoleSink(consoleOutput),
                Log = options.Log,
            });
            return new VirtualMachine(monitor, consoleOutput);
        }
        catch (Exception e) when (e is ArgumentException or BootImageException or KvmUnavailableException or IOException or UnauthorizedAccessException or FormatException)
        {
            throw new VirtualMachineException(e.Message, e);
        }
    }

    /// <summary>A disk as the machine-configuration model every front end fills (docs/architecture.md).</summary>
    internal static DiskConfiguration ToConfiguration(DiskOptions disk) => new(disk.Path, disk.ReadOnly, disk.Id);

    /// <summary>Runs the guest on threads of its own; returns at once.</summary>
    public void Start()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state != VirtualMachineState.Created)
            {
                throw new InvalidOperationException($"the virtual machine is {_state.ToString().ToLowerInvariant()}: it starts only once");
            }

            _state = VirtualMachineState.Running;
            _runThread = new Thread(Run) { IsBackground = true, Name = "sv-embedded-vm" };
            _runThread.Start();
        }
    }

    /// <summary>Completes when the guest has stopped, with how it ended.</summary>
    public Task<VirtualMachineExit> WaitForExitAsync(CancellationToken cancellationToken = default) =>
        _exit.Task.WaitAsync(cancellationToken);

    /// <summary>Parks every vCPU. False when they did not stop within <paramref name="timeout"/> (default 5 s).</summary>
    public bool Pause(TimeSpan? timeout = null)
    {
        lock (_lock)
        {
            RequireState(VirtualMachineState.Running, "pause");
            if (!_monitor.Pause(timeout ?? TimeSpan.FromSeconds(5)))
            {
                _monitor.Resume();
                return false;
            }

            _state = VirtualMachineState.Paused;
            return true;
        }
    }

    /// <summary>Lets a paused guest run again.</summary>
    public void Resume()
    {
        lock (_lock)
        {
            RequireState(VirtualMachineState.Paused, "resume");
            _monitor.Resume();
            _state = VirtualMachineState.Running;
        }
    }

    /// <summary>Asks the guest to shut down, as a press of the ACPI power button; it may ignore it.</summary>
    public void RequestShutdown()
    {
        lock (_lock)
        {
            RequireState(VirtualMachineState.Running, "be asked to shut down");
            _monitor.PressPowerButton();
        }
    }

    /// <summary>Stops the guest at once (it ends as powered off); nothing happens when it has already stopped.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            if (_state is VirtualMachineState.Running or VirtualMachineState.Paused)
            {
                _monitor.Stop("stopped by the embedding application");
                if (_state == VirtualMachineState.Paused)
                {
                    _monitor.Resume();
                }
            }
        }
    }

    /// <summary>Exit and event counts of the accelerator, by reason (e.g. "io", "mmio", "hlt"), summed over the vCPUs.</summary>
    public IReadOnlyDictionary<string, long> Counters() => _monitor.ExitCounts();

    /// <summary>Stops the guest if it still runs, waits for its threads and frees its memory and devices.</summary>
    public void Dispose()
    {
        Thread? runThread;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            runThread = _runThread;
        }

        Stop();
        runThread?.Join();
        _monitor.Dispose();
        _consoleOutput.Complete();
        _exit.TrySetResult(new VirtualMachineExit(ExitReason.PowerOff, 0, "disposed before it was started"));
    }

    /// <summary>As <see cref="Dispose"/>.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Run()
    {
        VirtualMachineExit exit;
        try
        {
            RunOutcome outcome = _monitor.Run();
            exit = new VirtualMachineExit(
                outcome.Reason switch
                {
                    MachineStopReason.Reset => ExitReason.Reset,
                    MachineStopReason.DebugExit => ExitReason.DebugExit,
                    MachineStopReason.Crashed => ExitReason.Crashed,
                    _ => ExitReason.PowerOff,
                },
                outcome.ExitStatus,
                outcome.Detail);
        }
        catch (Exception e)
        {
            // Whatever escapes the machine ends this guest, never the embedding process.
            exit = new VirtualMachineExit(ExitReason.Crashed, 1, $"the VMM failed: {e.GetType().Name}: {e.Message}");
        }

        lock (_lock)
        {
            _state = VirtualMachineState.Stopped;
        }

        _consoleOutput.Complete();
        _exit.TrySetResult(exit);
    }

    private void RequireState(VirtualMachineState expected, string action)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_state != expected)
        {
            throw new InvalidOperationException($"the virtual machine is {_state.ToString().ToLowerInvariant()}: it cannot {action}");
        }
    }

    private static NetworkInterfaceConfiguration ToConfiguration(NetworkInterfaceOptions nic) => new()
    {
        TapName = nic.TapName,
        Mac = nic.MacAddress is null ? null : MacAddress.Parse(nic.MacAddress),
    };
}
