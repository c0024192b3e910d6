using System.Text;

namespace SharpVisor.Embedding.Tests;

/// <summary>Reads a machine's console in the background, as an application would, and lets a test wait for what it shows.</summary>
internal sealed class ConsoleCapture
{
    private readonly StringBuilder _text = new();
    private readonly Task _reader;

    public ConsoleCapture(Stream console)
    {
        _reader = Task.Run(async () =>
        {
            byte[] buffer = new byte[4096];
            int read;
            while ((read = await console.ReadAsync(buffer)) > 0)
            {
                lock (_text)
                {
                    _text.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }
            }
        });
    }

    public string Text
    {
        get
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }

    public async Task WaitForAsync(Func<bool> condition, int timeoutSeconds = 120)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"the console did not show what was awaited within {timeoutSeconds} s; it shows:\n{Text}");
            Assert.False(_reader.IsFaulted, $"reading the console failed: {_reader.Exception}");
            await Task.Delay(50);
        }
    }
}
