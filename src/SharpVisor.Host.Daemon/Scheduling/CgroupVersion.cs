namespace SharpVisor.Host.Scheduling;

public enum CgroupVersion
{
    V1,
    V2,
}
