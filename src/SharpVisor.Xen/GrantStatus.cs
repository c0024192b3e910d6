namespace SharpVisor.Xen;

/// <summary>The GNTST_* statuses of grant_table_op (xen/include/public/grant_table.h).</summary>
public static class GrantStatus
{
    public const short Okay = 0;
    public const short GeneralError = -1;
    public const short BadDomain = -2;
    public const short BadGntref = -3;
    public const short BadHandle = -4;
    public const short BadVirtAddr = -5;
    public const short NoDeviceSpace = -7;
    public const short PermissionDenied = -8;
    public const short BadPage = -9;
    public const short BadCopyArg = -10;
}
