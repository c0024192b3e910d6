using SharpVisor.Host.Console;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// Sees a VMM's API at work: its sockets once they listen and each request around its dispatch
/// (on the connection's thread). The Firecracker front end (<see cref="VmmHandover"/>) is the one user.
/// </summary>
public interface IApiRequestObserver
{
    void Listening(UnixSocketHttpServer api, ConsoleSocketServer console, VmmController controller);

    void Dispatching(ApiRequest request);

    void Served(ApiRequest request, ApiResponse response);
}
