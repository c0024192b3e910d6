namespace SharpVisor.Emulator.Tests;
