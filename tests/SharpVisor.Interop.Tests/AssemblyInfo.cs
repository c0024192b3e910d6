namespace SharpVisor.Interop.Tests;
