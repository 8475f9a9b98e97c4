package docker

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"mkube/pkg/driver"
)

// fakeNetworks is an engine holding networks of the given subnets; it records the subnet of each
// network created in it.
func fakeNetworks(t *testing.T, subnets ...string) (Engine, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var created []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/networks"):
			var list []map[string]any
			for i, sn := range subnets {
				list = append(list, map[string]any{"Name": "other" + string(rune('a'+i)), "Id": "id" + string(rune('a'+i)),
					"IPAM": map[string]any{"Config": []map[string]string{{"Subnet": sn}}}})
			}
			json.NewEncoder(w).Encode(list)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/networks/create"):
			var req struct {
				IPAM struct{ Config []struct{ Subnet string } }
			}
			body, _ := io.ReadAll(r.Body)
			json.Unmarshal(body, &req)
			mu.Lock()
			created = append(created, req.IPAM.Config[0].Subnet)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]string{"Id": "new"})
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	eng := Docker()
	eng.Peers = nil
	eng.Connect = func() (*client.Client, error) {
		return client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersionNegotiation())
	}
	return eng, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), created...) }
}

// A new profile network keeps clear of the subnets another engine on the host holds, also those
// whose bridges are down (a stopped Podman cluster's), and a peer that does not answer is skipped.
func TestEnsureNetworkAvoidsPeers(t *testing.T) {
	peer, _ := fakeNetworks(t, "192.168.49.0/24", "192.168.58.0/24")
	down := Podman()
	down.Connect = func() (*client.Client, error) {
		return client.New(client.WithHost("unix:///nonexistent/podman.sock"), client.WithAPIVersionNegotiation())
	}
	eng, created := fakeNetworks(t)
	eng.Peers = func() []Engine { return []Engine{down, peer} }
	d, err := NewOn(eng, "p1", driver.Options{Owner: driver.Owner{HomeID: "h1", Profile: "p1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ip, err := d.ensureNetwork(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// What the engine was asked for: the first candidate clear of the peer's and the host's.
	taken := hostSubnets()
	for _, sn := range []string{"192.168.49.0/24", "192.168.58.0/24"} {
		_, n, _ := net.ParseCIDR(sn)
		taken = append(taken, n)
	}
	var want string
	for _, sn := range candidateSubnets() {
		if !overlaps(sn, taken) {
			want = sn.String()
			break
		}
	}
	if got := created(); len(got) != 1 || got[0] != want {
		t.Fatalf("created networks %v, want one on %s", got, want)
	}
	if ip.String() != want {
		t.Errorf("network %s, want %s", ip, want)
	}
	if _, sn, _ := net.ParseCIDR(want); nodeIP(sn, 1) != offset(sn, 2) || nodeIP(sn, 3) != offset(sn, 4) {
		t.Errorf("node IPs %s, %s: want .2 for the primary, .4 for the third node", nodeIP(sn, 1), nodeIP(sn, 3))
	}
}

func TestEnginesArePeers(t *testing.T) {
	for _, tt := range []struct {
		eng  Engine
		peer string
	}{{Docker(), "podman"}, {Podman(), "docker"}} {
		peers := tt.eng.Peers()
		if len(peers) != 1 || peers[0].Driver != tt.peer {
			t.Errorf("%s's peers: %v, want %s", tt.eng.Driver, peers, tt.peer)
		}
	}
}
