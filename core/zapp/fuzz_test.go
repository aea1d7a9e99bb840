package zapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
)

// FuzzLoadExpand: decoding, validation and expansion never panic; what
// Load accepts validates, expands into total_count instances per service,
// which Instances then Bind give too, and survives a JSON round trip. The seed corpus (f.Add and
// testdata/fuzz/FuzzLoadExpand) runs with every plain go test.
func FuzzLoadExpand(f *testing.F) {
	for _, file := range append(testdataFiles, "v2-spark.json") {
		data, err := os.ReadFile("testdata/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, c := range loadCases() {
		doc := c.raw
		if c.edit != nil {
			m := base()
			c.edit(m)
			doc = mustJSON(m)
		}
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode(data)
		_, _, _ = ConvertV2(data)
		a, err := Load(data, DefaultLimits())
		if err != nil {
			var ps Problems
			if a != nil || !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Load: app %v, error %T %v", a != nil, err, err)
			}
			return
		}
		if ps := Validate(a, DefaultLimits()); ps != nil {
			t.Fatalf("Load accepted what Validate refuses: %v", ps)
		}
		insts, err := Expand(a, ctx())
		if err != nil {
			t.Fatalf("Expand of a loaded description: %v", err)
		}
		stored, err := Instances(a, DefaultLimits(), secrets())
		if err != nil || len(stored) != len(insts) {
			t.Fatalf("Instances: %d, %v; Expand gives %d", len(stored), err, len(insts))
		}
		for i := range stored {
			if b, err := Bind(stored[i], ctx()); err != nil || !reflect.DeepEqual(b, insts[i]) {
				t.Fatalf("Bind(%s) = %+v, %v; Expand gives %+v", stored[i].Name, b, err, insts[i])
			}
		}
		n := 0
		for _, s := range a.Services {
			n += s.TotalCount
		}
		if len(insts) != n {
			t.Fatalf("%d instances, want %d", len(insts), n)
		}
		seen := map[string]bool{}
		for _, i := range insts {
			if seen[i.DNSName] {
				t.Fatalf("DNS name %s twice", i.DNSName)
			}
			seen[i.DNSName] = true
			names := map[string]bool{}
			for _, e := range i.Environment {
				if names[e.Name] {
					t.Fatalf("%s: %s set twice", i.Name, e.Name)
				}
				names[e.Name] = true
			}
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Load(out, DefaultLimits())
		if err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip differs:\n%s", out)
		}
	})
}

// bigApp is a valid description of n services, each with two instances,
// ports, a volume and environment templates naming other services.
func bigApp(n int) *App {
	a := &App{Name: "big-app", Version: Version, Size: 1}
	for i := range n {
		min, max := int64(1<<30), int64(2<<30)
		cores := 1.0
		a.Services = append(a.Services, Service{
			Name: fmt.Sprintf("svc-%d", i), Image: "zoerepo/svc:1.0", Monitor: i == 0,
			StartupOrder: i % 3, EssentialCount: 1, TotalCount: 2,
			Resources: Resources{Memory: IntRange{&min, &max}, Cores: FloatRange{&cores, nil}},
			Ports: []Port{{Name: "Web UI", PortNumber: 8080, Protocol: "tcp", URLTemplate: "http://{ip_port}/", Proxy: true},
				{Name: "RPC port", PortNumber: 7077, Protocol: "tcp"}},
			Environment: []EnvVar{
				{"PEER", fmt.Sprintf("{dns_name#svc-%d1}", (i+1)%n)},
				{"SELF", "{dns_name#self}"},
				{"OWNER", "{user_name} in {execution_name}"},
				{"PLAIN", "value"},
			},
			Volumes: []Volume{{Name: "data", Path: "/srv/data", ReadOnly: true}},
		})
	}
	return a
}

func BenchmarkValidateExpand50(b *testing.B) {
	a := bigApp(50)
	c := ctx()
	b.ReportAllocs()
	for b.Loop() {
		if ps := Validate(a, DefaultLimits()); ps != nil {
			b.Fatal(ps)
		}
		insts, err := Expand(a, c)
		if err != nil || len(insts) != 100 {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad50(b *testing.B) {
	data, err := json.Marshal(bigApp(50))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(data, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}
