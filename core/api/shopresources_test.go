package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/client"
	"github.com/zoe-project/zoe/internal/testutil"
)

// smallNode is simConfig with one node of 4 cores and 8 GiB, smaller than
// the administrative limits (16 cores, 64 GiB): a service may ask for
// more than the node has without passing a limit.
const smallNode = `deployment_name = "apitest"
data_dir        = "data"
shop_dir        = %q

auth "file" {
  users_file = "users.csv"
}

workspace "dir" {
  base_path = "ws"
}

backend "sim" {
  default_run = "1h"
  pull_images = true
  node "node1" {
    cores  = 4
    memory = "8GiB"
    labels = ["spark"]
  }
}
`

// TestShopResources starts the example shop's Dask entry with its
// services' memory and cores changed: every problem is answered at its
// JSON path under shop.resources, what is asked counts against the quota,
// and /me/quota says what the caller uses.
func TestShopResources(t *testing.T) {
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fmt.Sprintf(smallNode, filepath.Join(root, "examples", "shop")))
	alice, dora, admin := e.as("alice"), e.as("dora"), e.as("root")
	const dask = "dask-0"
	var entry client.ShopEntry
	e.must(alice, "GET", "/shop/"+dask, nil, http.StatusOK, &entry)

	start := func(w who, res any) response {
		t.Helper()
		return e.do(w, "POST", "/executions", map[string]any{"shop": map[string]any{"id": dask, "resources": res}})
	}
	type res = map[string]any

	// A valid change: each worker reserves 1 GiB and 1 core.
	r := start(alice, res{"worker": res{"memory": 1 << 30, "cores": 1}})
	if r.status != http.StatusCreated {
		t.Fatalf("valid resources: %d %s", r.status, r.body)
	}
	var ex client.Execution
	r.json(t, &ex)
	// scheduler 0.25 + 4 workers × 1 + notebook 0.5; 256 MiB + 4 GiB + 1 GiB.
	if ex.Cores != 4.75 || ex.Memory != 256<<20+5<<30 {
		t.Errorf("reserved %g cores and %d bytes, want 4.75 and %d", ex.Cores, ex.Memory, int64(256<<20+5<<30))
	}
	e.must(alice, "GET", fmt.Sprintf("/executions/%d", ex.ID), nil, http.StatusOK, &ex)
	var desc struct {
		Services []struct {
			Name      string
			Resources struct {
				Memory struct{ Min, Max *int64 }
				Cores  struct{ Min, Max *float64 }
			}
		}
	}
	if err := json.Unmarshal(ex.Description, &desc); err != nil {
		t.Fatal(err)
	}
	for _, s := range desc.Services {
		mem, cores := *s.Resources.Memory.Min, *s.Resources.Cores.Min
		want := map[string][2]float64{"scheduler": {256 << 20, 0.25}, "worker": {1 << 30, 1}, "notebook": {1 << 30, 0.5}}[s.Name]
		if float64(mem) != want[0] || cores != want[1] {
			t.Errorf("%s runs with %d bytes and %g cores, want %v", s.Name, mem, cores, want)
		}
	}

	// Problems, each at its path.
	for _, c := range []struct {
		name   string
		res    any
		status int
		paths  []string
		says   string
	}{
		{"above max_service_memory", res{"worker": res{"memory": 65 << 30}}, 400,
			[]string{"shop.resources.worker.memory"}, "max_service_memory"},
		{"above max_service_cores", res{"notebook": res{"cores": 17}}, 400,
			[]string{"shop.resources.notebook.cores"}, "max_service_cores"},
		{"too little memory", res{"worker": res{"memory": 100}}, 400,
			[]string{"shop.resources.worker.memory"}, "at least 1024 bytes"},
		{"no cores", res{"scheduler": res{"cores": 0}}, 400,
			[]string{"shop.resources.scheduler.cores"}, "greater than 0"},
		{"more than the node has", res{"worker": res{"cores": 6}}, 400,
			[]string{"shop.resources.worker.cores"}, "more than any node"},
		{"unknown service", res{"db": res{"cores": 1}}, 400,
			[]string{"shop.resources.db"}, "scheduler, worker, notebook"},
		{"nothing asked", res{"worker": res{}}, 400,
			[]string{"shop.resources.worker"}, "give memory, cores or both"},
		{"memory with a unit", res{"worker": res{"memory": "2GiB"}}, 400,
			[]string{"shop.resources.worker.memory"}, "must be an integer"},
		{"a fraction of a byte", res{"worker": res{"memory": 1.5}}, 400,
			[]string{"shop.resources.worker.memory"}, "integer"},
		{"not an object", res{"worker": 2}, 400,
			[]string{"shop.resources.worker"}, "must be an object"},
		{"unknown field", res{"worker": res{"memory_min": 1 << 30}}, 400,
			[]string{"shop.resources.worker.memory_min"}, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := start(alice, c.res)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			eb := r.apiError(t)
			var paths []string
			for _, d := range eb.Details {
				paths = append(paths, d.Path)
			}
			if !slices.Equal(paths, c.paths) {
				t.Errorf("paths %q, want %q: %s", paths, c.paths, r.body)
			}
			if !strings.Contains(string(r.body), c.says) {
				t.Errorf("the answer does not say %q: %s", c.says, r.body)
			}
		})
	}

	// What is asked counts against the quota: 3 cores fit the entry as
	// it is (1.75), not with workers of 1 core (4.75).
	e.must(admin, "POST", "/quotas", client.Quota{Name: "three-cores", Cores: 3}, http.StatusCreated, nil)
	e.must(dora, "GET", "/me", nil, http.StatusOK, nil)
	e.must(admin, "PATCH", "/users/dora", client.UserUpdate{Quota: ptr("three-cores")}, http.StatusOK, nil)
	r = start(dora, res{"worker": res{"cores": 1}})
	if r.status != http.StatusConflict || r.apiError(t).Code != client.CodeQuotaExceeded || !strings.Contains(string(r.body), "4.75 cores") {
		t.Errorf("over quota: %d %s", r.status, r.body)
	}
	var use client.QuotaUse
	e.must(dora, "GET", "/me/quota", nil, http.StatusOK, &use)
	if use.Quota.Name != "three-cores" || use.Quota.Cores != 3 || use.Used != (client.Usage{}) {
		t.Errorf("dora's quota before: %+v", use)
	}
	r = start(dora, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("within quota: %d %s", r.status, r.body)
	}
	e.must(dora, "GET", "/me/quota", nil, http.StatusOK, &use)
	if use.Used != (client.Usage{Executions: 1, Cores: 1.75, Memory: 256<<20 + 4*512<<20 + 1<<30}) {
		t.Errorf("dora uses %+v", use.Used)
	}
	// Another's usage is not in one's own.
	e.must(alice, "GET", "/me/quota", nil, http.StatusOK, &use)
	if use.Quota.Name != "user" || use.Used.Executions != 1 || use.Used.Cores != 4.75 {
		t.Errorf("alice's quota: %+v", use)
	}
}
