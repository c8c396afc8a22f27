namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// The YARP policies the worker clusters name (load balancing, available destinations, passive health), given by the
/// composition root, so that Destinations does not depend on the folders that implement them (Routing, Load).
/// </summary>
internal sealed record WorkerClusterPolicies(string LoadBalancing, string AvailableDestinations, string PassiveHealth);
