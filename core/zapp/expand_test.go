package zapp

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var testdataFiles = []string{"jupyter.json", "spark.json", "batch.json"}

// Load → json.Marshal → Load gives the same App, and Clone an equal one
// that shares nothing.
func TestRoundTrip(t *testing.T) {
	for _, f := range testdataFiles {
		t.Run(f, func(t *testing.T) {
			a := load(t, f)
			data, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Load(data, DefaultLimits())
			if err != nil {
				t.Fatalf("reload: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round trip differs:\n%+v\n%+v", a, b)
			}
			c := a.Clone()
			if !reflect.DeepEqual(a, c) {
				t.Fatal("clone differs")
			}
			// Write through every pointer and slice of the clone.
			for i := range c.Services {
				s := &c.Services[i]
				s.Name += "x"
				for _, p := range []*int64{s.Resources.Memory.Min, s.Resources.Memory.Max, s.Resources.Shm} {
					if p != nil {
						*p++
					}
				}
				for _, p := range []*float64{s.Resources.Cores.Min, s.Resources.Cores.Max} {
					if p != nil {
						*p++
					}
				}
				for j := range s.Environment {
					s.Environment[j].Value += "x"
				}
				for j := range s.Ports {
					s.Ports[j].PortNumber++
				}
				for j := range s.Volumes {
					s.Volumes[j].Path += "x"
				}
				for j := range s.Labels {
					s.Labels[j] += "x"
				}
				if s.Command != nil {
					*s.Command += "x"
				}
				if s.Replicas != nil {
					*s.Replicas++
				}
			}
			if !reflect.DeepEqual(a, b) {
				t.Error("changing the clone changed the original")
			}
		})
	}
	if (*App)(nil).Clone() != nil {
		t.Error("nil clone")
	}
}

func ctx() ExpandContext {
	uid, gid := uint32(1000), uint32(100)
	return ExpandContext{ExecutionID: "42", ExecutionName: "My-Run", UserName: "alice", UID: &uid, GID: &gid,
		Deployment: "Prod", ProxyBase: "/proxy/", Limits: DefaultLimits(), NewSecret: secrets()}
}

// secrets returns a NewSecret that gives secret-1, secret-2, …: each call
// of secrets starts the same sequence again, so that two expansions agree.
func secrets() func() string {
	n := 0
	return func() string {
		n++
		return "secret-" + strconv.Itoa(n)
	}
}

func envMap(t *testing.T, inst Instance) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, e := range inst.Environment {
		if _, dup := m[e.Name]; dup {
			t.Errorf("%s: %s set twice", inst.Name, e.Name)
		}
		m[e.Name] = e.Value
	}
	return m
}

func TestExpandSpark(t *testing.T) {
	a := load(t, "spark.json")
	before := a.Clone()
	insts, err := Expand(a, ctx())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, before) {
		t.Error("Expand changed the description")
	}
	type row struct {
		name, service string
		index         int
		essential     bool
		dns           string
	}
	var got []row
	for _, i := range insts {
		got = append(got, row{i.Name, i.Service, i.Index, i.Essential, i.DNSName})
	}
	want := []row{
		{"spark-master0", "spark-master", 0, true, "spark-master0-42-prod"},
		{"spark-worker0", "spark-worker", 0, true, "spark-worker0-42-prod"},
		{"spark-worker1", "spark-worker", 1, true, "spark-worker1-42-prod"},
		{"notebook0", "notebook", 0, true, "notebook0-42-prod"},
		{"spark-worker2", "spark-worker", 2, false, "spark-worker2-42-prod"},
		{"spark-worker3", "spark-worker", 3, false, "spark-worker3-42-prod"},
		{"spark-worker4", "spark-worker", 4, false, "spark-worker4-42-prod"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instances:\n got %v\nwant %v", got, want)
	}

	w3 := insts[5]
	wantEnv := []EnvVar{
		{"SPARK_MASTER", "spark://spark-master0-42-prod:7077"},
		{"SPARK_WORKER_CORES", "2"},
		{"SPARK_WORKER_RAM", "8g"},
		{"SPARK_LOCAL_IP", "spark-worker3-42-prod"},
		{"EXECUTION_ID", "42"},
		{"DEPLOY_NAME", "Prod"},
		{"ZOE_USER", "alice"},
		{"ZOE_UID", "1000"},
		{"ZOE_GID", "100"},
		{"SERVICE_NAME", "spark-worker3"},
		{"ZOE_WORKSPACE", "/mnt/workspace"},
		{"REVERSE_PROXY_PATH_8081", "/proxy/42/spark-worker3/8081"},
	}
	if !reflect.DeepEqual(w3.Environment, wantEnv) {
		t.Errorf("spark-worker3 environment:\n got %v\nwant %v", w3.Environment, wantEnv)
	}
	if w3.MemoryReservation != 8<<30 || w3.MemoryLimit != 12<<30 || w3.Cores != 2 || w3.CoresLimit != 4 ||
		w3.StartupOrder != 1 || w3.Monitor || w3.Image != "zoerepo/spark-worker:3.5.1" || w3.Command != nil {
		t.Errorf("spark-worker3: %+v", w3)
	}
	nb := insts[3]
	env := envMap(t, nb)
	if env["JSON_EXAMPLE"] != `{"execution": "42"}` || env["NB_USER"] != "alice" ||
		env["PYSPARK_SUBMIT_ARGS"] != "--master spark://spark-master0-42-prod:7077 --executor-memory 6g pyspark-shell" ||
		env["REVERSE_PROXY_PATH_8888"] != "/proxy/42/notebook0/8888" || env["REVERSE_PROXY_PATH_4040"] != "/proxy/42/notebook0/4040" ||
		env["ZOE_PROXY_TOKEN"] != "secret-1" || nb.ProxyToken != "secret-1" {
		t.Errorf("notebook0 environment: %v", nb.Environment)
	}
	// Null cores.min reserves 0.1 core; null memory.max limits at min.
	if nb.Cores != 0.1 || nb.CoresLimit != 0 || nb.MemoryReservation != 4<<30 || nb.MemoryLimit != 4<<30 ||
		nb.Command == nil || *nb.Command != "start-notebook.sh --NotebookApp.token=''" || nb.WorkDir != "/mnt/workspace" {
		t.Errorf("notebook0: %+v", nb)
	}
	for _, i := range insts {
		envMap(t, i)
	}
	// The instances share nothing with the description.
	*nb.Command = "changed"
	nb.Ports[0].Name = "changed"
	if *a.Services[2].Command == "changed" || a.Services[2].Ports[0].Name == "changed" {
		t.Error("an instance shares memory with the description")
	}
}

func TestExpandOrderAndContext(t *testing.T) {
	m := base()
	// Document order: master (startup_order 0), worker (1); add a service
	// that starts first but comes last, and one with the same order as
	// master, after it.
	extra := func(name string, order, essential, total int) map[string]any {
		s := svcOf(base(), 0)
		s["name"], s["startup_order"], s["essential_count"], s["total_count"] = name, order, essential, total
		s["monitor"] = false
		s["environment"] = []any{}
		return s
	}
	m["services"] = append(m["services"].([]any), extra("first", -1, 1, 2), extra("twin", 0, 1, 1))
	a, err := Load([]byte(mustJSON(m)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	c := ctx()
	c.UID, c.GID, c.ProxyBase = nil, nil, ""
	insts, err := Expand(a, c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range insts {
		names = append(names, i.Name)
	}
	want := []string{"first0", "master0", "twin0", "worker0", "worker1", "first1", "worker2", "worker3"}
	if !slices.Equal(names, want) {
		t.Errorf("order: got %v, want %v", names, want)
	}
	env := envMap(t, insts[3])
	if _, ok := env["ZOE_UID"]; ok {
		t.Error("ZOE_UID set though unknown")
	}
	if env["MASTER"] != "master0-42-prod" || env["OWNER"] != "alice" || env["REVERSE_PROXY_PATH_8080"] != "/42/worker0/8080" {
		t.Errorf("worker0 environment: %v", insts[3].Environment)
	}
}

// TestExpandMemory: what memory an instance reserves and is limited to.
// With memory.min and memory.max both null it is limited to the
// administrative limit, not left without one (a user could otherwise
// reserve nothing and take a whole node's memory).
func TestExpandMemory(t *testing.T) {
	p := func(n int64) any { return n }
	for _, c := range []struct {
		name                 string
		min, max             any
		limits               Limits
		reservation, limited int64
	}{
		{"min and max", p(1 << 30), p(2 << 30), DefaultLimits(), 1 << 30, 2 << 30},
		{"min only: limited at min", p(1 << 30), nil, DefaultLimits(), 1 << 30, 1 << 30},
		{"max only", nil, p(2 << 30), DefaultLimits(), 0, 2 << 30},
		{"neither: the administrative limit", nil, nil, DefaultLimits(), 0, 64 << 30},
		{"neither, a lower limit", nil, nil, Limits{MaxMemory: 3 << 30}, 0, 3 << 30},
		{"neither, no limit at all", nil, nil, Limits{}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			m["services"] = m["services"].([]any)[:1]
			svcOf(m, 0)["environment"] = []any{}
			resOf(m, 0, "memory")["min"], resOf(m, 0, "memory")["max"] = c.min, c.max
			a, err := Load([]byte(mustJSON(m)), c.limits)
			if err != nil {
				t.Fatal(err)
			}
			insts, err := Instances(a, c.limits, nil)
			if err != nil {
				t.Fatal(err)
			}
			if in := insts[0]; in.MemoryReservation != c.reservation || in.MemoryLimit != c.limited {
				t.Errorf("reservation %d, limit %d; want %d, %d", in.MemoryReservation, in.MemoryLimit, c.reservation, c.limited)
			}
		})
	}
}

func TestExpandRefusesInvalid(t *testing.T) {
	a := load(t, "jupyter.json")
	a.Services[0].Environment[0].Value = "{nobody}"
	if _, err := Expand(a, ctx()); err == nil || !strings.Contains(err.Error(), "services[0].environment[0][1]: unknown variable {nobody}") {
		t.Errorf("got %v", err)
	}
	a = load(t, "jupyter.json")
	c := ctx()
	c.Limits = Limits{MaxCores: 0.5}
	if _, err := Expand(a, c); err == nil || !strings.Contains(err.Error(), "max_service_cores") {
		t.Errorf("limits: got %v", err)
	}
	if _, err := Expand(nil, ctx()); err == nil {
		t.Error("nil description expanded")
	}
}

func TestExpandSamePortTwice(t *testing.T) {
	a := load(t, "jupyter.json")
	a.Services[0].Ports = append(a.Services[0].Ports, Port{Name: "DNS over udp", PortNumber: 8888, Protocol: "udp"})
	insts, err := Expand(a, ctx())
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(t, insts[0])
	if env["REVERSE_PROXY_PATH_8888"] != "/proxy/42/jupyter0/8888" {
		t.Errorf("environment: %v", insts[0].Environment)
	}
}

// TestProxyToken: the instances with a proxied port, essential or elastic,
// get a token of their own, in ProxyToken and as ZOE_PROXY_TOKEN, and the
// others none; without NewSecret nobody gets one.
func TestProxyToken(t *testing.T) {
	// base() has a master (1 instance) and workers (2 essential, 2
	// elastic), neither proxied.
	proxied := func(m map[string]any, i int) { portOf(m, i, 0)["proxy"] = true }
	cases := []struct {
		name      string
		edit      func(m map[string]any)
		newSecret func() string
		want      map[string]string // instance: token; the others have none
	}{
		{"no proxied port", func(map[string]any) {}, secrets(), map[string]string{}},
		{"proxied master", func(m map[string]any) { proxied(m, 0) }, secrets(), map[string]string{"master0": "secret-1"}},
		{"proxied workers, elastic ones too", func(m map[string]any) { proxied(m, 1) }, secrets(),
			map[string]string{"worker0": "secret-1", "worker1": "secret-2", "worker2": "secret-3", "worker3": "secret-4"}},
		{"a udp port marked proxy", func(m map[string]any) {
			svcOf(m, 0)["ports"] = append(svcOf(m, 0)["ports"].([]any),
				map[string]any{"name": "stats", "port_number": 9000, "protocol": "udp", "url_template": "{ip_port}", "proxy": true})
		}, secrets(), map[string]string{"master0": "secret-1"}},
		{"no NewSecret", func(m map[string]any) { proxied(m, 0); proxied(m, 1) }, nil, map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			a, err := Load([]byte(mustJSON(m)), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			c := ctx()
			c.NewSecret = tc.newSecret
			insts, err := Expand(a, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range insts {
				env := envMap(t, in)
				tok, set := env[ProxyTokenEnv]
				if want := tc.want[in.Name]; tok != want || set != (want != "") || in.ProxyToken != want {
					t.Errorf("%s: ZOE_PROXY_TOKEN %q (set %v), ProxyToken %q; want %q", in.Name, tok, set, in.ProxyToken, want)
				}
				if set && in.Environment[len(in.Environment)-1].Name != ProxyTokenEnv {
					t.Errorf("%s: ZOE_PROXY_TOKEN not among Zoe's variables at the end: %v", in.Name, in.Environment)
				}
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	cases := []struct{ in, out, err string }{
		{"plain", "plain", ""},
		{"{{}}", "{}", ""},
		{"a{{b}}c", "a{b}c", ""},
		{"{user_name}@{deployment_name}", "alice@Prod", ""},
		{"x-{execution_name}-{execution_id}", "x-My-Run-42", ""},
		{"{{{user_name}}}", "{alice}", ""},
		{"{", "", `unbalanced "{" at character 1`},
		{"a}", "", `single "}" at character 2`},
		{"{a{b}}", "", `unbalanced "{" at character 1`},
		{"é{}", "", `empty "{}" at character 2`},
	}
	e := newBinder(ctx())
	for _, c := range cases {
		got, err := e.resolve(c.in, "self")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %s", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.out)
		}
	}
}

func TestInstanceLookup(t *testing.T) {
	svcs := []Service{{Name: "web", TotalCount: 12}, {Name: "db", TotalCount: 1}, {Name: "web1", TotalCount: 1}, {Name: "x-2", TotalCount: 3}}
	for name, want := range map[string]bool{"web0": true, "web11": true, "web12": false, "web01": false, "web": false,
		"db0": true, "db1": false, "Web0": false, "web-1": false, "web+1": false, "web10": true, "x-20": true, "x-23": false,
		"x-2": false, "web99999999999999999999": false} {
		if newInstanceSet(svcs).has(name) != want {
			t.Errorf("has(%q) != %v", name, want)
		}
	}
	for _, c := range []struct {
		a, b Service
		want bool
	}{
		{Service{Name: "web", TotalCount: 12}, Service{Name: "web1", TotalCount: 1}, true},
		{Service{Name: "web", TotalCount: 10}, Service{Name: "web1", TotalCount: 1}, false},
		{Service{Name: "WEB", TotalCount: 30}, Service{Name: "web2", TotalCount: 1}, true},
		{Service{Name: "web", TotalCount: 1000}, Service{Name: "web01", TotalCount: 5}, false},
		{Service{Name: "web", TotalCount: 1000}, Service{Name: "web-a", TotalCount: 5}, false},
	} {
		if instanceCollision(strings.ToLower(c.a.Name), c.a.TotalCount, strings.ToLower(c.b.Name), c.b.TotalCount) != c.want {
			t.Errorf("instanceCollision(%s×%d, %s) != %v", c.a.Name, c.a.TotalCount, c.b.Name, c.want)
		}
	}
}

func TestConvertV2(t *testing.T) {
	data, err := os.ReadFile("testdata/v2-spark.json")
	if err != nil {
		t.Fatal(err)
	}
	a, warns, err := ConvertV2(data)
	if err != nil {
		t.Fatal(err)
	}
	wantWarns := []string{
		"priority: format 3 has no priority; it became size 512",
		"services[0].networks: dropped",
		"services[1].volumes[0]: mounted at /mnt/datasets instead of /datasets",
		"services[2].ports[1].is_main_endpoint: dropped",
		"services[2].volumes[0]: mounted at /mnt/workspace-data instead of /mnt/workspace",
	}
	if len(warns) != len(wantWarns) {
		t.Errorf("warnings: %q", warns)
	}
	for i, w := range wantWarns {
		if i >= len(warns) || !strings.HasPrefix(warns[i], w) {
			t.Errorf("warning %d: want %s…", i, w)
		}
	}
	if p := Validate(a, DefaultLimits()); p != nil {
		t.Errorf("converted description invalid: %v", p)
	}
	w := a.Services[1]
	if a.Version != 3 || a.Size != 512 || a.Name != "spark-jupyter" || w.Image != "192.168.45.252:5000/zoerepo/spark-worker" ||
		*w.Resources.Memory.Min != 12<<30 || w.Resources.Memory.Max != nil || w.TotalCount != 4 || w.EssentialCount != 1 ||
		w.StartupOrder != 1 || !reflect.DeepEqual(w.Volumes, []Volume{{"datasets", "/mnt/cephfs/datasets", true}}) ||
		!reflect.DeepEqual(w.Ports, []Port{{Name: "Spark worker web interface", PortNumber: 8081, Protocol: "tcp", URLTemplate: "http://{ip_port}/"}}) {
		t.Errorf("spark-worker: %+v", w)
	}
	if a.Services[2].Command != nil || a.Services[0].Environment[0] != (EnvVar{"SPARK_MASTER_IP", "spark-master0-{execution_id}"}) {
		t.Errorf("converted: %+v", a)
	}
	// The output loads as format 3.
	out, _ := json.Marshal(a)
	if _, err := Load(out, DefaultLimits()); err != nil {
		t.Errorf("reload: %v", err)
	}
}

func TestConvertV2Errors(t *testing.T) {
	v1 := `{"name": "mpi", "version": 1, "will_end": true, "priority": 10, "requires_binary": true,
	  "services": [{"name": "mpirun", "docker_image": "openmpi:1", "monitor": true, "ports": [{"name": "22", "protocol": "ssh", "port_number": 22, "is_main_endpoint": false}],
	    "required_resources": {"memory": 1073741824}, "volumes": [["/srv", "/mnt/srv", false]], "constraints": ["node==x"]}]}`
	a, warns, err := ConvertV2([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warns, "\n")
	for _, w := range []string{"requires_binary: dropped", "services[0]: format 1 has no instance counts", `services[0].ports[0].protocol: "ssh" became tcp`,
		"services[0].constraints: dropped", "the result breaks a format-3 rule, fix it by hand: services[0].ports[0].name: must be at least 3 characters"} {
		if !strings.Contains(joined, w) {
			t.Errorf("missing warning %q in\n%s", w, joined)
		}
	}
	if a.Services[0].TotalCount != 1 || a.Services[0].Volumes[0] != (Volume{"srv", "/srv", false}) {
		t.Errorf("v1: %+v", a.Services[0])
	}
	for doc, want := range map[string]string{
		`{"version": 3}`: "version: this is format version 3; only formats 1 and 2 are converted",
		`{"version": 2`:  "line 1, column 14: unexpected end of input",
		`{"version": 2, "name": "x", "will_end": false, "services": [{"name": "s", "docker_image": 5, "monitor": true, "ports": [],
		  "required_resources": {}, "total_count": 1, "essential_count": 1, "startup_order": 0, "volumes": [["/a", "/b"]]}]}`: "services[0].docker_image: must be a string, got the number 5\n" +
			"services[0].required_resources.memory: is required\n" +
			"services[0].volumes[0]: must be a [host path, container path, read-only] triple, got an array of 2 elements",
		`[]`: "a ZApp description is a JSON object",
	} {
		if _, _, err := ConvertV2([]byte(doc)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", doc, err, want)
		}
	}
}

// TestBindEqualsExpand: the instances Zoe stores at submission (Instances,
// through JSON), bound when the execution starts, are those Expand gives
// with the same context.
func TestBindEqualsExpand(t *testing.T) {
	apps := map[string]*App{"big": bigApp(5)}
	for _, f := range testdataFiles {
		data, err := os.ReadFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if apps[f], err = Load(data, DefaultLimits()); err != nil {
			t.Fatal(err)
		}
	}
	noIDs := ctx()
	noIDs.UID, noIDs.GID, noIDs.ExecutionID, noIDs.ProxyBase = nil, nil, "7", ""
	for name, a := range apps {
		for _, c := range []ExpandContext{ctx(), noIDs} {
			c.NewSecret = secrets() // from secret-1, as Instances below
			want, err := Expand(a, c)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := Instances(a, c.Limits, secrets())
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != len(want) {
				t.Fatalf("%s: %d instances, Expand gives %d", name, len(stored), len(want))
			}
			for i, in := range stored {
				if in.DNSName != "" {
					t.Errorf("%s: stored %s has the DNS name %s", name, in.Name, in.DNSName)
				}
				js, err := json.Marshal(in)
				if err != nil {
					t.Fatal(err)
				}
				var back Instance
				if err := json.Unmarshal(js, &back); err != nil {
					t.Fatal(err)
				}
				got, err := Bind(back, c)
				if err != nil {
					t.Fatalf("%s: Bind(%s): %v", name, in.Name, err)
				}
				if !reflect.DeepEqual(got, want[i]) {
					t.Errorf("%s: Bind(%s) =\n%+v\nExpand gives\n%+v", name, in.Name, got, want[i])
				}
				if _, err := Bind(got, c); err == nil || !strings.Contains(err.Error(), "bound already") {
					t.Errorf("%s: binding %s twice: %v", name, in.Name, err)
				}
			}
		}
	}
}
