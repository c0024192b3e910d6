using System.Runtime.InteropServices;
using SharpVisor.Interop;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// The thread that serves one device's queues off the vCPU threads. It polls one eventfd per
/// queue (signalled by the transport's notify handler, or by KVM through an ioeventfd), a stop
/// eventfd, and any back-end descriptors the device adds (a TAP fd).
/// </summary>
public sealed unsafe class VirtioWorker : IDisposable
{
    private readonly VirtioDevice _device;
    private readonly EventFd[] _queueEvents;
    private readonly EventFd _stop = new(nonBlocking: true);
    private readonly List<(int Fd, Func<bool> Wanted, Action Ready)> _sources = new();
    private Thread? _thread;
    private volatile bool _stopping;

    public VirtioWorker(VirtioDevice device, int queueCount)
    {
        _device = device;
        _queueEvents = new EventFd[queueCount];
        for (int i = 0; i < queueCount; i++)
        {
            _queueEvents[i] = new EventFd(nonBlocking: true);
        }
    }

    public EventFd QueueEvent(int index) => _queueEvents[index];

    public void AddSource(int fd, Func<bool> wanted, Action ready) => _sources.Add((fd, wanted, ready));

    public void Wake(int index) => _queueEvents[index].Signal();

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = $"{_device.Name}-worker" };
        _thread.Start();
    }

    public void Dispose()
    {
        if (_thread is not null)
        {
            _stopping = true;
            _stop.Signal();
            _thread.Join();
            _thread = null;
        }

        foreach (EventFd e in _queueEvents)
        {
            e.Dispose();
        }

        _stop.Dispose();
    }

    private void Run()
    {
        int fixedCount = _queueEvents.Length + 1;
        PollFd* fds = stackalloc PollFd[fixedCount + _sources.Count];
        int[] sourceIndex = new int[_sources.Count];
        while (!_stopping)
        {
            try
            {
                if (!RunOnce(fds, fixedCount, sourceIndex))
                {
                    return;
                }
            }
            catch (Exception e)
            {
                // Nothing a guest does may end the process: whatever escaped the device's own
                // guard (a back-end callback, a transport signal) fails this device only.
                FailDevice($"worker: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>One poll round; false when the worker must stop.</summary>
    private bool RunOnce(PollFd* fds, int fixedCount, int[] sourceIndex)
    {
        fds[0] = new PollFd { Fd = _stop.Fd, Events = LibC.POLLIN };
        for (int i = 0; i < _queueEvents.Length; i++)
        {
            fds[i + 1] = new PollFd { Fd = _queueEvents[i].Fd, Events = LibC.POLLIN };
        }

        // A frozen device's back ends wait (a readable TAP would wake the poll again and again);
        // the thaw notifies the queues, which ends the poll and brings them back.
        int count = fixedCount;
        for (int s = 0; s < _sources.Count && !_device.IsFrozen; s++)
        {
            if (_sources[s].Wanted())
            {
                sourceIndex[count - fixedCount] = s;
                fds[count++] = new PollFd { Fd = _sources[s].Fd, Events = LibC.POLLIN };
            }
        }

        int ready = LibC.Poll(fds, (nuint)count, -1);
        if (ready < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == LibC.EINTR)
            {
                return true;
            }

            // A poll that cannot work would spin: fail the device and end the thread.
            FailDevice($"worker: poll failed: {LibC.Strerror(errno)}");
            return false;
        }

        if (fds[0].Revents != 0)
        {
            return false;
        }

        for (int i = 0; i < _queueEvents.Length; i++)
        {
            if (fds[i + 1].Revents != 0)
            {
                _queueEvents[i].Consume();
                _device.ServiceQueue(i);
            }
        }

        for (int i = fixedCount; i < count; i++)
        {
            if (fds[i].Revents != 0)
            {
                _sources[sourceIndex[i - fixedCount]].Ready();
            }
        }

        return true;
    }

    private void FailDevice(string reason)
    {
        try
        {
            _device.Fail(reason);
        }
        catch (Exception)
        {
            // Failing the device is the last resort; if even that throws, the thread carries on.
        }
    }
}
