package start

import (
	"context"
	"fmt"

	"mkube/pkg/cluster"
	"mkube/pkg/driver"
	"mkube/pkg/reason"
)

// loadBalancer is a driver that can front an --ha cluster's API servers (docker and podman: an
// HAProxy container on the profile's network).
type loadBalancer interface {
	EnsureLB(ctx context.Context, image string, port int, backends []driver.LBBackend) (driver.Endpoint, error)
}

// checkHA refuses --ha on a driver that has no load balancer to put in front of the control planes.
func checkHA(s *State) error {
	if !s.Profile.HA {
		return nil
	}
	if _, ok := s.Driver.(loadBalancer); !ok {
		return reason.Errorf(reason.Usage, "use the docker or podman driver for --ha", "the %s driver cannot run an --ha cluster yet", s.Profile.Driver)
	}
	return nil
}

// loadBalancerStep brings up the load balancer of an --ha cluster, configured for every control
// plane, and points the start's API endpoint at it: the host reaches the API servers through it,
// the nodes by the name control-plane.mkube.internal, which resolves to it.
func loadBalancerStep(ctx context.Context, s *State) error {
	if !s.Profile.HA {
		return nil
	}
	lb := s.Driver.(loadBalancer)
	backends := []driver.LBBackend{{Name: s.Profile.Name, IP: s.Endpoint.IP}}
	for _, n := range s.Others {
		if n.Node.ControlPlane && n.Endpoint.IP != "" {
			backends = append(backends, driver.LBBackend{Name: n.Node.Name, IP: n.Endpoint.IP})
		}
	}
	ep, err := lb.EnsureLB(ctx, s.Profile.BaseImage, s.Profile.APIServerPort, backends)
	if err != nil {
		return cluster.MachineError(reason.GuestError, fmt.Errorf("the API server load balancer: %w", err), "`mkube delete -p "+s.Profile.Name+"` and start again if it persists")
	}
	s.LB = &ep
	s.Endpoint.APIServerHost, s.Endpoint.APIServerPort = ep.APIServerHost, ep.APIServerPort
	return nil
}

// controlPlaneIP is where the nodes reach the API server: the load balancer of an --ha cluster,
// else the primary.
func (s *State) controlPlaneIP() string {
	if s.LB != nil {
		return s.LB.IP
	}
	return s.Endpoint.IP
}

// haSANs are the other control planes' names and addresses and the load balancer's, which the
// shared API server certificate of an --ha cluster must carry.
func (s *State) haSANs() (names, ips []string) {
	if s.LB == nil {
		return nil, nil
	}
	for _, n := range s.Others {
		if n.Node.ControlPlane {
			names = append(names, n.Node.Name)
			if n.Endpoint.IP != "" { // a stopped one this start leaves stopped: its address comes when it starts
				ips = append(ips, n.Endpoint.IP)
			}
		}
	}
	return names, append(ips, s.LB.IP)
}
