package docker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"mkube/pkg/driver"
)

// fakeEngine answers the two requests awaitContainer makes (ping, container inspect): the
// container is missing for the first `missing` inspects, then shows with the given labels.
func fakeEngine(t *testing.T, missing int32, labels map[string]string) *Driver {
	t.Helper()
	var inspects atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/containers/p1/json"):
			if inspects.Add(1) <= missing || labels == nil {
				w.WriteHeader(http.StatusNotFound)
				json.NewEncoder(w).Encode(map[string]string{"message": "No such container: p1"})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{
				"Id": "abc", "Name": "/p1",
				"Config": map[string]any{"Labels": labels},
				"State":  map[string]any{"Status": "created"},
			})
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	cli, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &Driver{profile: "p1", machine: "p1", owner: driver.Owner{HomeID: "h1", Profile: "p1"}, eng: Docker(), cli: cli}
}

// A create cut short by an interrupted start may still be finishing in the engine when the next
// start looks: the container shows after a while, and is taken as the node only if it is ours.
func TestAwaitContainer(t *testing.T) {
	ours := driver.Owner{HomeID: "h1", Profile: "p1"}.Labels()
	theirs := driver.Owner{HomeID: "h2", Profile: "p1"}.Labels()
	for _, tc := range []struct {
		name    string
		missing int32
		labels  map[string]string
		wantErr string
	}{
		{name: "shows at once", missing: 0, labels: ours},
		{name: "shows after the create finishes", missing: 3, labels: ours},
		{name: "another home's container", missing: 2, labels: theirs, wantErr: "another mkube home's"},
		{name: "never shows", labels: nil, wantErr: "no container of that name shows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fakeEngine(t, tc.missing, tc.labels)
			st, err := d.awaitContainer(context.Background(), 2*time.Second)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || st == nil || st.ID != "abc" {
				t.Fatalf("awaitContainer = %v, %v; want the container", st, err)
			}
		})
	}
	t.Run("Ctrl-C while waiting", func(t *testing.T) {
		d := fakeEngine(t, 0, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := d.awaitContainer(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the caller's context error", err)
		}
	})
}
