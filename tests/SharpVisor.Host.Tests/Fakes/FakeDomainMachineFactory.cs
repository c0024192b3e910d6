using SharpVisor.Host.Domains;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests.Fakes;

/// <summary>Builds <see cref="FakeDomainMachine"/>s and keeps them for the test to inspect.</summary>
public sealed class FakeDomainMachineFactory : IDomainMachineFactory
{
    private readonly List<FakeDomainMachine> _machines = new();

    public bool ObeysPowerButton { get; set; }

    public MachineStopReason? CtrlAltDelReaction { get; set; }

    /// <summary>When set, Create refuses with this message, as a bad kernel image would.</summary>
    public string? RefuseWith { get; set; }

    public FakeDomainMachine? Last
    {
        get
        {
            lock (_machines)
            {
                return _machines.LastOrDefault();
            }
        }
    }

    public FakeDomainMachine Find(string name)
    {
        lock (_machines)
        {
            return _machines.Last(m => m.Spec.Name == name);
        }
    }

    public IDomainMachine Create(MachineConfiguration spec, Stream serialOutput)
    {
        if (RefuseWith is not null)
        {
            throw new DomainConfigurationException(RefuseWith);
        }

        var machine = new FakeDomainMachine(spec, serialOutput) { ObeysPowerButton = ObeysPowerButton, CtrlAltDelReaction = CtrlAltDelReaction };
        lock (_machines)
        {
            _machines.Add(machine);
        }

        return machine;
    }
}
