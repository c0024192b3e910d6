namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.system_event.type (KVM_SYSTEM_EVENT_*).</summary>
public enum KvmSystemEventType : uint
{
    Shutdown = 1,
    Reset = 2,
    Crash = 3,
    Wakeup = 4,
    Suspend = 5,
    SevTerm = 6,
    Tdx = 7,
}
