namespace SharpVisor.Devices.Tests;
