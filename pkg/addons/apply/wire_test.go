package apply

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// What New's real clients send, checked against a stand-in API server that serves discovery for
// namespaces and configmaps only, answers applies with their body and lists with nothing: the
// fake dynamic client above cannot show the requests' paths, content type and parameters.
func TestWire(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	discoveries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api":
			mu.Lock()
			discoveries++
			mu.Unlock()
			io.WriteString(w, `{"kind":"APIVersions","versions":["v1"]}`)
		case r.URL.Path == "/apis":
			io.WriteString(w, `{"kind":"APIGroupList","apiVersion":"v1","groups":[]}`)
		case r.URL.Path == "/api/v1":
			io.WriteString(w, `{"kind":"APIResourceList","groupVersion":"v1","resources":[
				{"name":"namespaces","namespaced":false,"kind":"Namespace","verbs":["get","list","patch","delete"]},
				{"name":"configmaps","namespaced":true,"kind":"ConfigMap","verbs":["get","list","patch","delete"]}]}`)
		case r.Method == http.MethodPatch:
			body, _ := io.ReadAll(r.Body)
			var obj map[string]any
			json.Unmarshal(body, &obj)
			labels, _ := obj["metadata"].(map[string]any)["labels"].(map[string]any)
			mu.Lock()
			got = append(got, strings.Join([]string{r.Method, r.URL.Path, r.URL.RawQuery,
				r.Header.Get("Content-Type"), "label=" + labels[AddonLabel].(string)}, " "))
			mu.Unlock()
			w.Write(body)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/"):
			mu.Lock()
			got = append(got, "LIST "+r.URL.Path+" "+r.URL.RawQuery)
			mu.Unlock()
			io.WriteString(w, `{"kind":"List","apiVersion":"v1","metadata":{},"items":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	a, err := New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: demo}\n---\n" +
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n"
	if err := a.Apply(testCtx(t), "demo", []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PATCH /api/v1/namespaces/demo fieldManager=mkube&force=true application/apply-patch+yaml label=demo",
		"PATCH /api/v1/namespaces/demo/configmaps/settings fieldManager=mkube&force=true application/apply-patch+yaml label=demo",
		"LIST /api/v1/namespaces labelSelector=mkube.io%2Faddon%3Ddemo",
		"LIST /api/v1/configmaps labelSelector=mkube.io%2Faddon%3Ddemo",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The kinds this server lacks (most of PruneKinds) are skipped without asking discovery again.
	if discoveries != 1 {
		t.Errorf("discovery read %d times, want once", discoveries)
	}
}
