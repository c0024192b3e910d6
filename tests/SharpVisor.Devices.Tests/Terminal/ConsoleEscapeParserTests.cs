using System.Text;
using SharpVisor.Devices.Terminal;

namespace SharpVisor.Devices.Tests.Terminal;

public sealed class ConsoleEscapeParserTests
{
    private static (bool Quit, string Passed) Run(ConsoleEscapeParser parser, string input)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(input);
        byte[] output = new byte[bytes.Length + 1];
        bool quit = parser.Process(bytes, output, out int written);
        return (quit, Encoding.ASCII.GetString(output, 0, written));
    }

    [Fact]
    public void OrdinaryBytesPassUnchanged()
    {
        Assert.Equal((false, "ls -l\r\x03\x1b[A"), Run(new ConsoleEscapeParser(), "ls -l\r\x03\x1b[A"));
    }

    [Fact]
    public void CtrlAXQuitsAndDropsWhatFollows()
    {
        Assert.Equal((true, "ab"), Run(new ConsoleEscapeParser(), "ab\x01xcd"));
    }

    [Fact]
    public void CtrlACtrlASendsOneCtrlA()
    {
        Assert.Equal((false, "a\x01" + "b"), Run(new ConsoleEscapeParser(), "a\x01\x01" + "b"));
    }

    [Fact]
    public void CtrlAFollowedByAnythingElsePassesBoth()
    {
        Assert.Equal((false, "\x01" + "b\x01X"), Run(new ConsoleEscapeParser(), "\x01" + "b\x01X"));
    }

    [Fact]
    public void SequenceSplitAcrossReadsIsRecognised()
    {
        var parser = new ConsoleEscapeParser();
        Assert.Equal((false, "a"), Run(parser, "a\x01"));
        Assert.True(parser.EscapePending);
        Assert.Equal((true, ""), Run(parser, "x"));

        var other = new ConsoleEscapeParser();
        Run(other, "\x01");
        Assert.Equal((false, "\x01q"), Run(other, "q"));
        Assert.False(other.EscapePending);
    }

    [Fact]
    public void OutputBufferMustHoldAHeldBackCtrlA()
    {
        var parser = new ConsoleEscapeParser();
        Assert.Throws<ArgumentException>(() => parser.Process(new byte[4], new byte[4], out _));
    }
}
