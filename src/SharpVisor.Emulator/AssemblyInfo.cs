using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("SharpVisor.Emulator.Tests")]
[assembly: InternalsVisibleTo("EmulatorMips")]
