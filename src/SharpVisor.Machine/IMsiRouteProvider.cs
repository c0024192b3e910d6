namespace SharpVisor.Machine;

/// <summary>
/// An interrupt controller that can give a device a fast path for one MSI source: a route whose
/// signal is a single eventfd write (KVM: an MSI routing entry with an irqfd). Controllers
/// without one take every message through <see cref="IInterruptController.SignalMsi"/>.
/// </summary>
public interface IMsiRouteProvider
{
    /// <summary>A new route, or null when the controller has no room or no support for one.</summary>
    IMsiRoute? TryCreateMsiRoute();
}
