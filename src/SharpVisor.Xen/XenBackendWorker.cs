namespace SharpVisor.Xen;

/// <summary>
/// The one thread a split-driver back end serves its device on (<see cref="XenBackendDevice"/>,
/// <see cref="XenDriverBlockBackend"/>): woken by the guest's notifications and XenStore watches,
/// it runs one pass of the device's work per wake-up until stopped.
/// </summary>
internal sealed class XenBackendWorker : IDisposable
{
    private readonly AutoResetEvent _work = new(false);
    private readonly Action _pass;
    private readonly string _threadName;
    private readonly object _lock = new();
    private Thread? _thread;
    private volatile bool _stopping;

    public XenBackendWorker(string threadName, Action pass)
    {
        _threadName = threadName;
        _pass = pass;
    }

    /// <summary>Starts the thread (once) and asks it for a first pass.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_thread is not null || _stopping)
            {
                return;
            }

            _thread = new Thread(Run) { IsBackground = true, Name = _threadName };
            _thread.Start();
        }

        _work.Set();
    }

    /// <summary>Asks for another pass.</summary>
    public void Wake() => _work.Set();

    /// <summary>Ends the thread after its current pass and waits for it (unless called from it).</summary>
    public void Stop()
    {
        Thread? thread;
        lock (_lock)
        {
            _stopping = true;
            thread = _thread;
        }

        _work.Set();
        if (thread is not null && thread != Thread.CurrentThread)
        {
            thread.Join();
        }
    }

    /// <summary>After <see cref="Stop"/>.</summary>
    public void Dispose() => _work.Dispose();

    private void Run()
    {
        while (!_stopping)
        {
            _work.WaitOne();
            if (!_stopping)
            {
                _pass();
            }
        }
    }
}
