namespace SharpVisor.Machine.Tests;
