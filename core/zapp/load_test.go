package zapp

import (
	"encoding/json"
	"strings"
	"testing"
)

// base is a valid two-service description as a generic tree, which each
// case edits.
func base() map[string]any {
	svc := func(name string, monitor bool, order, essential, total int) map[string]any {
		return map[string]any{
			"name": name, "image": "zoerepo/" + name + ":1.0", "monitor": monitor,
			"startup_order": order, "essential_count": essential, "total_count": total,
			"resources": map[string]any{
				"memory": map[string]any{"min": 1 << 30, "max": 2 << 30},
				"cores":  map[string]any{"min": 1, "max": 2},
			},
			"ports": []any{map[string]any{
				"name": "Web UI", "port_number": 8080, "protocol": "tcp", "url_template": "http://{ip_port}/",
			}},
			"environment": []any{[]any{"MASTER", "{dns_name#master0}"}, []any{"OWNER", "{user_name}"}},
			"volumes":     []any{map[string]any{"name": "data", "path": "/srv/data", "read_only": true}},
			"command":     nil,
		}
	}
	return map[string]any{
		"name": "test-app", "version": 3, "will_end": false, "size": 10,
		"services": []any{svc("master", true, 0, 1, 1), svc("worker", false, 1, 2, 4)},
	}
}

// Accessors for editing the tree.
func svcOf(m map[string]any, i int) map[string]any { return m["services"].([]any)[i].(map[string]any) }
func resOf(m map[string]any, i int, k string) map[string]any {
	return svcOf(m, i)["resources"].(map[string]any)[k].(map[string]any)
}
func portOf(m map[string]any, i, j int) map[string]any {
	return svcOf(m, i)["ports"].([]any)[j].(map[string]any)
}
func volOf(m map[string]any, i, j int) map[string]any {
	return svcOf(m, i)["volumes"].([]any)[j].(map[string]any)
}
func setEnv(m map[string]any, i int, pairs ...any) { svcOf(m, i)["environment"] = pairs }
func pair(n, v any) []any                          { return []any{n, v} }

type want struct{ path, msg string }

type loadCase struct {
	name   string
	edit   func(m map[string]any) // applied to base(); or
	raw    string                 // a literal document
	limits *Limits                // DefaultLimits when nil
	want   []want                 // nil: valid
}

func loadCases() []loadCase {
	const w0 = "services[0]."
	const w1 = "services[1]."
	return []loadCase{
		{name: "valid base", edit: func(map[string]any) {}},
		{name: "valid: @ in the name, nulls, optional keys", edit: func(m map[string]any) {
			m["name"] = "alice@spark-cluster"
			s := svcOf(m, 1)
			s["replicas"], s["work_dir"], s["labels"], s["network"] = 1, "/mnt/workspace", []any{"gpu", "ssd"}, "my-net"
			s["resources"].(map[string]any)["shm"] = 0
			resOf(m, 1, "memory")["min"], resOf(m, 1, "memory")["max"] = nil, nil
			resOf(m, 1, "cores")["min"], resOf(m, 1, "cores")["max"] = nil, nil
			s["command"] = "run --all"
			s["ports"] = []any{}
			portOf(m, 0, 0)["proxy"] = true
			setEnv(m, 1, pair("A", "{{literal}} {dns_name#self} {dns_name#worker3} {execution_id}"),
				pair("B", "{execution_name}-{deployment_name}"), pair("_c9", ""))
		}},
		// Syntax.
		{name: "malformed JSON", raw: "{\n  \"name\": \"x\",\n  \"version\": 3,,\n}",
			want: []want{{"", "line 3, column 16: invalid character ','"}}},
		{name: "truncated JSON", raw: `{"name": "abc", "services": [`, want: []want{{"", "line 1, column 30: unexpected end of input"}}},
		{name: "empty input", raw: " \n", want: []want{{"", "line 2, column 1: empty input"}}},
		{name: "trailing data", raw: `{"name": "abc"} {}`, want: []want{{"", "line 1, column 17: unexpected data after"}}},
		{name: "not an object", raw: `[1, 2]`, want: []want{{"", "a ZApp description is a JSON object, got an array of 2 elements"}}},
		// Top level.
		{name: "name missing", edit: func(m map[string]any) { delete(m, "name") }, want: []want{{"name", "is required"}}},
		{name: "name null", edit: func(m map[string]any) { m["name"] = nil }, want: []want{{"name", "must be a string, got null"}}},
		{name: "name too short", edit: func(m map[string]any) { m["name"] = "ab" }, want: []want{{"name", "must be 3 to 128 characters long, got 2"}}},
		{name: "name too long", edit: func(m map[string]any) { m["name"] = strings.Repeat("a", 129) }, want: []want{{"name", "must be 3 to 128 characters long, got 129"}}},
		{name: "name characters", edit: func(m map[string]any) { m["name"] = "my app" }, want: []want{{"name", `may hold only letters, digits, '-' and '@', got "my app"`}}},
		{name: "version missing", edit: func(m map[string]any) { delete(m, "version") }, want: []want{{"version", "is required"}}},
		{name: "version string", edit: func(m map[string]any) { m["version"] = "3" }, want: []want{{"version", `must be an integer, got the string "3"`}}},
		{name: "version 2", edit: func(m map[string]any) { m["version"] = 2; m["priority"] = 1 },
			want: []want{{"version", "format-2 description"}}},
		{name: "version 2 mentions convert", edit: func(m map[string]any) { m["version"] = 2 },
			want: []want{{"version", `docker_image to image`}}},
		{name: "version 1", edit: func(m map[string]any) { m["version"] = 1 }, want: []want{{"version", "format-1 description (Zoe 2016)"}}},
		{name: "version 4", edit: func(m map[string]any) { m["version"] = 4 }, want: []want{{"version", "unsupported format version 4: Zoe runs only format version 3"}}},
		{name: "processes format", raw: `{"name": "spark", "version": 1, "will_end": false, "priority": 512, "requires_binary": false, "processes": []}`,
			want: []want{{"", `"processes" format of Zoe 0.8 and 0.9`}}},
		{name: "will_end string", edit: func(m map[string]any) { m["will_end"] = "no" }, want: []want{{"will_end", `must be true or false, got the string "no"`}}},
		{name: "size negative", edit: func(m map[string]any) { m["size"] = -1 }, want: []want{{"size", "must be at least 0, got -1"}}},
		{name: "size fraction", raw: strings.Replace(mustJSON(base()), `"size":10`, `"size":2.5`, 1),
			want: []want{{"size", "must be an integer, got the number 2.5"}}},
		{name: "size 2.0 is not an integer", raw: strings.Replace(mustJSON(base()), `"size":10`, `"size":2.0`, 1),
			want: []want{{"size", "must be an integer, got the number 2.0"}}},
		{name: "size 1e3 is not an integer", raw: strings.Replace(mustJSON(base()), `"size":10`, `"size":1e3`, 1),
			want: []want{{"size", "must be an integer, got the number 1e3"}}},
		{name: "services missing", edit: func(m map[string]any) { delete(m, "services") }, want: []want{{"services", "is required"}}},
		{name: "services empty", edit: func(m map[string]any) { m["services"] = []any{} }, want: []want{{"services", "must hold at least one service"}}},
		{name: "services object", edit: func(m map[string]any) { m["services"] = map[string]any{} }, want: []want{{"services", "must be an array, got an object"}}},
		{name: "service not an object", edit: func(m map[string]any) { m["services"].([]any)[1] = "worker" },
			want: []want{{"services[1]", `must be an object, got the string "worker"`}}},
		{name: "unknown top-level key", edit: func(m map[string]any) { m["owner"] = "x" },
			want: []want{{"owner", "unknown key; the known keys are name, version, will_end, size, services"}}},
		{name: "misspelt key", edit: func(m map[string]any) { m["will_ned"] = false; delete(m, "will_end") },
			want: []want{{"will_end", "is required"}, {"will_ned", `did you mean "will_end"?`}}},
		{name: "key that is not an identifier", edit: func(m map[string]any) { m["a b"] = 1 },
			want: []want{{`["a b"]`, "unknown key"}}},
		{name: "repeated key", raw: strings.Replace(mustJSON(base()), `"size":10`, `"size":10,"size":11`, 1),
			want: []want{{"size", "repeated key"}}},
		{name: "no monitor", edit: func(m map[string]any) { svcOf(m, 0)["monitor"] = false },
			want: []want{{"services", "no service has monitor set to true"}}},
		{name: "too many instances", edit: func(m map[string]any) { svcOf(m, 0)["total_count"] = 600; svcOf(m, 1)["total_count"] = 600 },
			want: []want{{"services", "the ZApp creates 1200 service instances, more than the 1000 allowed"}}},
		// 1000 copies of a 20 KiB environment value, '<' escaped to 6 bytes: 117.5 MiB stored.
		{name: "instances too large stored", edit: func(m map[string]any) {
			svcOf(m, 1)["total_count"] = 999
			svcOf(m, 1)["environment"] = []any{[]any{"BIG", strings.Repeat("<", 20<<10)}}
		}, want: []want{{"services", "the ZApp's 1000 service instances would take 123165162 bytes (117.5 MiB) stored"}}},
		// Services.
		{name: "service name missing", edit: func(m map[string]any) { delete(svcOf(m, 1), "name") },
			want: []want{{w1 + "name", "is required"}}},
		{name: "service name too short", edit: func(m map[string]any) { svcOf(m, 1)["name"] = "wk" },
			want: []want{{w1 + "name", "must be 3 to 16 characters long, got 2"}}},
		{name: "service name too long", edit: func(m map[string]any) { svcOf(m, 1)["name"] = strings.Repeat("w", 17) },
			want: []want{{w1 + "name", "must be 3 to 16 characters long, got 17"}}},
		{name: "service name characters", edit: func(m map[string]any) { svcOf(m, 1)["name"] = "spark_worker" },
			want: []want{{w1 + "name", `may hold only letters, digits and '-', got "spark_worker"`}}},
		{name: "service name with @", edit: func(m map[string]any) { svcOf(m, 1)["name"] = "a@b" },
			want: []want{{w1 + "name", "may hold only letters, digits and '-'"}}},
		{name: "service names differ only in case", edit: func(m map[string]any) { svcOf(m, 1)["name"] = "Master" },
			want: []want{{w1 + "name", `repeats the name of services[0] ("master"): service names are unique regardless of case`}}},
		{name: "instance names collide", edit: func(m map[string]any) {
			svcOf(m, 0)["name"], svcOf(m, 0)["total_count"] = "worker1", 1
			svcOf(m, 1)["total_count"] = 12
			svcOf(m, 0)["environment"] = []any{}
			svcOf(m, 1)["environment"] = []any{}
		}, want: []want{{w1 + "name", `its instances' names collide with those of services[0] ("worker1"), e.g. worker10`}}},
		{name: "image empty", edit: func(m map[string]any) { svcOf(m, 0)["image"] = "" }, want: []want{{w0 + "image", "must not be empty"}}},
		{name: "image with space", edit: func(m map[string]any) { svcOf(m, 0)["image"] = "ubuntu latest" },
			want: []want{{w0 + "image", "must not contain white space"}}},
		{name: "image with escape", edit: func(m map[string]any) { svcOf(m, 0)["image"] = "ubuntu\x1b[2J" },
			want: []want{{w0 + "image", `may hold only printable ASCII characters, got "ubuntu\x1b[2J"`}}},
		{name: "image with right-to-left override", edit: func(m map[string]any) { svcOf(m, 0)["image"] = "ubuntu\u202e" },
			want: []want{{w0 + "image", "may hold only printable ASCII characters"}}},
		{name: "image name too long", edit: func(m map[string]any) {
			svcOf(m, 0)["image"] = "r.example.org:5000/" + strings.Repeat("a", 237) + ":latest"
		},
			want: []want{{w0 + "image", "the image's name must be at most 255 characters long, got 256"}}},
		{name: "image name at its bound", edit: func(m map[string]any) {
			svcOf(m, 0)["image"] = "r.example.org:5000/" + strings.Repeat("a", 236) + ":" + strings.Repeat("t", 128) + "@sha256:" + strings.Repeat("0", 64)
		}},
		{name: "image reference too long", edit: func(m map[string]any) { svcOf(m, 0)["image"] = "ubuntu:" + strings.Repeat("t", 600) },
			want: []want{{w0 + "image", "must be at most 512 characters long, got 607"}}},
		{name: "format-2 image key", edit: func(m map[string]any) { s := svcOf(m, 0); s["docker_image"] = s["image"]; delete(s, "image") },
			want: []want{{w0 + "image", "is required"}, {w0 + "docker_image", `did you mean "image"? (docker_image is the name of an older format)`}}},
		{name: "monitor string", edit: func(m map[string]any) { svcOf(m, 0)["monitor"] = "true" },
			want: []want{{w0 + "monitor", `must be true or false, got the string "true"`}}},
		{name: "startup_order fraction", raw: strings.Replace(mustJSON(base()), `"startup_order":1`, `"startup_order":1.5`, 1),
			want: []want{{w1 + "startup_order", "must be an integer, got the number 1.5"}}},
		{name: "essential_count zero", edit: func(m map[string]any) { svcOf(m, 1)["essential_count"] = 0 },
			want: []want{{w1 + "essential_count", "must be at least 1, got 0"}}},
		{name: "total_count zero", edit: func(m map[string]any) { svcOf(m, 1)["total_count"] = 0 },
			want: []want{{w1 + "total_count", "must be at least 1, got 0"}}},
		{name: "total below essential", edit: func(m map[string]any) { svcOf(m, 1)["essential_count"] = 3; svcOf(m, 1)["total_count"] = 2 },
			want: []want{{w1 + "total_count", "must be at least essential_count (3), got 2"}}},
		{name: "total_count huge", raw: strings.Replace(mustJSON(base()), `"total_count":4`, `"total_count":99999999999999999999`, 1),
			want: []want{{w1 + "total_count", "is out of range: 99999999999999999999 is not a 64-bit integer"}}},
		{name: "total_count above the instance bound", edit: func(m map[string]any) { svcOf(m, 1)["total_count"] = 1001 },
			want: []want{{w1 + "total_count", "must be at most 1000, got 1001"}, {"services", "more than the 1000 allowed"}}},
		{name: "replicas zero", edit: func(m map[string]any) { svcOf(m, 1)["replicas"] = 0 },
			want: []want{{w1 + "replicas", "must be at least 1, got 0"}}},
		{name: "unknown service key", edit: func(m map[string]any) { svcOf(m, 1)["restart"] = true },
			want: []want{{w1 + "restart", "unknown key; the known keys are name, image, monitor"}}},
		// Resources.
		{name: "resources missing", edit: func(m map[string]any) { delete(svcOf(m, 0), "resources") },
			want: []want{{w0 + "resources", "is required"}}},
		{name: "memory.min too small", edit: func(m map[string]any) { resOf(m, 0, "memory")["min"] = 100 },
			want: []want{{w0 + "resources.memory.min", "must be at least 1024 bytes, got 100"}}},
		{name: "memory.max key missing", edit: func(m map[string]any) { delete(resOf(m, 0, "memory"), "max") },
			want: []want{{w0 + "resources.memory.max", "is required"}}},
		{name: "memory.min string", edit: func(m map[string]any) { resOf(m, 0, "memory")["min"] = "1G" },
			want: []want{{w0 + "resources.memory.min", `must be an integer or null, got the string "1G"`}}},
		{name: "memory.min above the limit", edit: func(m map[string]any) { resOf(m, 0, "memory")["min"] = 80 << 30; resOf(m, 0, "memory")["max"] = nil },
			want: []want{{w0 + "resources.memory.min", "must be at most 64 GiB (the administrative limit max_service_memory), got 80 GiB"}}},
		{name: "memory.max above the limit", edit: func(m map[string]any) { resOf(m, 0, "memory")["max"] = 65<<30 + 1 },
			want: []want{{w0 + "resources.memory.max", "must be at most 64 GiB (the administrative limit max_service_memory), got 69793218561 bytes (65.0 GiB)"}}},
		{name: "memory above a configured limit", limits: &Limits{MaxCores: 16, MaxMemory: 1536 << 20},
			edit: func(m map[string]any) {},
			want: []want{{w0 + "resources.memory.max", "must be at most 1536 MiB (the administrative limit max_service_memory), got 2 GiB"},
				{w1 + "resources.memory.max", "max_service_memory"}}},
		{name: "memory.max below min", edit: func(m map[string]any) { resOf(m, 1, "memory")["max"] = 1 << 29 },
			want: []want{{w1 + "resources.memory.max", "must be at least memory.min (1 GiB), got 512 MiB"}}},
		{name: "cores.min zero", edit: func(m map[string]any) { resOf(m, 1, "cores")["min"] = 0 },
			want: []want{{w1 + "resources.cores.min", "must be greater than 0, got 0"}}},
		{name: "cores.min above the limit", edit: func(m map[string]any) { resOf(m, 1, "cores")["min"] = 20; resOf(m, 1, "cores")["max"] = nil },
			want: []want{{w1 + "resources.cores.min", "must be at most 16 (the administrative limit max_service_cores), got 20"}}},
		{name: "cores.max above a configured limit", limits: &Limits{MaxCores: 1.5, MaxMemory: 64 << 30},
			edit: func(m map[string]any) { resOf(m, 1, "cores")["max"] = 1.5 },
			want: []want{{w0 + "resources.cores.max", "must be at most 1.5 (the administrative limit max_service_cores), got 2"}}},
		{name: "cores.max below min", edit: func(m map[string]any) { resOf(m, 1, "cores")["min"] = 2.5 },
			want: []want{{w1 + "resources.cores.max", "must be at least cores.min (2.5), got 2"}}},
		{name: "cores.max below the default reservation", edit: func(m map[string]any) { resOf(m, 1, "cores")["min"] = nil; resOf(m, 1, "cores")["max"] = 0.05 },
			want: []want{{w1 + "resources.cores.max", "must be at least 0.1, the reservation when cores.min is null"}}},
		{name: "cores.min string", edit: func(m map[string]any) { resOf(m, 1, "cores")["min"] = "1" },
			want: []want{{w1 + "resources.cores.min", `must be a number or null, got the string "1"`}}},
		{name: "shm negative", edit: func(m map[string]any) { svcOf(m, 1)["resources"].(map[string]any)["shm"] = -1 },
			want: []want{{w1 + "resources.shm", "must be at least 0, got -1"}}},
		{name: "unknown resource", edit: func(m map[string]any) { svcOf(m, 1)["resources"].(map[string]any)["gpus"] = 1 },
			want: []want{{w1 + "resources.gpus", "unknown key; the known keys are memory, cores, shm"}}},
		{name: "memory not an object", edit: func(m map[string]any) { svcOf(m, 1)["resources"].(map[string]any)["memory"] = 1 << 30 },
			want: []want{{w1 + "resources.memory", "must be an object, got the number 1073741824"}}},
		// Ports.
		{name: "ports not an array", edit: func(m map[string]any) { svcOf(m, 0)["ports"] = nil },
			want: []want{{w0 + "ports", "must be an array, got null"}}},
		{name: "port name short", edit: func(m map[string]any) { portOf(m, 0, 0)["name"] = "ui" },
			want: []want{{w0 + "ports[0].name", `must be at least 3 characters long, got "ui"`}}},
		{name: "port name with CSI", edit: func(m map[string]any) { portOf(m, 0, 0)["name"] = "web\u009b2J" },
			want: []want{{w0 + "ports[0].name", "must not hold control or format characters (U+009B at byte 3)"}}},
		{name: "port name with line separator", edit: func(m map[string]any) { portOf(m, 0, 0)["name"] = "web\u2028ui" },
			want: []want{{w0 + "ports[0].name", "U+2028"}}},
		{name: "port number zero", edit: func(m map[string]any) { portOf(m, 0, 0)["port_number"] = 0 },
			want: []want{{w0 + "ports[0].port_number", "must be between 1 and 65535, got 0"}}},
		{name: "port number too big", edit: func(m map[string]any) { portOf(m, 0, 0)["port_number"] = 65536 },
			want: []want{{w0 + "ports[0].port_number", "must be between 1 and 65535, got 65536"}}},
		{name: "port protocol http", edit: func(m map[string]any) { portOf(m, 0, 0)["protocol"] = "http" },
			want: []want{{w0 + "ports[0].protocol", `must be "tcp" or "udp", got "http"`}}},
		{name: "url_template placeholder", edit: func(m map[string]any) { portOf(m, 0, 0)["url_template"] = "http://{host}/" },
			want: []want{{w0 + "ports[0].url_template", "unknown placeholder {host}; only {ip_port} and {proxy_path} are allowed"}}},
		{name: "url_template brace", edit: func(m map[string]any) { portOf(m, 0, 0)["url_template"] = "http://{ip_port" },
			want: []want{{w0 + "ports[0].url_template", `unbalanced "{" at character 8`}}},
		{name: "url_template missing", edit: func(m map[string]any) { delete(portOf(m, 0, 0), "url_template") },
			want: []want{{w0 + "ports[0].url_template", "is required"}}},
		{name: "port proxy string, unknown key", edit: func(m map[string]any) { portOf(m, 0, 0)["proxy"] = "yes"; portOf(m, 0, 0)["path"] = "/" },
			want: []want{{w0 + "ports[0].proxy", `must be true or false, got the string "yes"`},
				{w0 + "ports[0].path", "unknown key; the known keys are name, port_number, protocol, url_template, proxy"}}},
		{name: "same port twice", edit: func(m map[string]any) {
			s := svcOf(m, 0)
			s["ports"] = append(s["ports"].([]any),
				map[string]any{"name": "DNS", "port_number": 8080, "protocol": "udp", "url_template": ""},
				map[string]any{"name": "Other UI", "port_number": 8080, "protocol": "tcp", "url_template": ""})
		}, want: []want{{w0 + "ports[2].port_number", "8080/tcp is already declared by ports[0]"}}},
		// Environment.
		{name: "environment pair too short", edit: func(m map[string]any) { setEnv(m, 1, []any{"A"}) },
			want: []want{{w1 + "environment[0]", "must be a [name, value] pair of strings, got an array of 1 elements"}}},
		{name: "environment object", edit: func(m map[string]any) { svcOf(m, 1)["environment"] = map[string]any{"A": "b"} },
			want: []want{{w1 + "environment", "must be an array, got an object"}}},
		{name: "environment value not a string", edit: func(m map[string]any) { setEnv(m, 1, pair("PORT", 8080)) },
			want: []want{{w1 + "environment[0][1]", "must be a string, got the number 8080"}}},
		{name: "environment bad names", edit: func(m map[string]any) { setEnv(m, 1, pair("1ST", ""), pair("MY-VAR", ""), pair("", "")) },
			want: []want{{w1 + "environment[0][0]", `must be a variable name (letters, digits and '_', not starting with a digit), got "1ST"`},
				{w1 + "environment[1][0]", `got "MY-VAR"`}, {w1 + "environment[2][0]", `got ""`}}},
		{name: "environment duplicate", edit: func(m map[string]any) { setEnv(m, 1, pair("A", "1"), pair("B", "2"), pair("A", "3")) },
			want: []want{{w1 + "environment[2][0]", "repeats environment[0] (A): set each variable once"}}},
		{name: "environment names Zoe sets", edit: func(m map[string]any) {
			setEnv(m, 1, pair("ZOE_USER", "x"), pair("EXECUTION_ID", "1"), pair("REVERSE_PROXY_PATH_8080", "/"), pair("ZOE_WORKSPACE", "/w"))
		}, want: []want{{w1 + "environment[0][0]", "ZOE_USER is set by Zoe in every container; remove it"},
			{w1 + "environment[1][0]", "EXECUTION_ID is set by Zoe"}, {w1 + "environment[2][0]", "REVERSE_PROXY_PATH_8080 is set by Zoe"},
			{w1 + "environment[3][0]", "ZOE_WORKSPACE is set by Zoe"}}},
		// A token a ZApp chose would be known to whoever reads the ZApp,
		// with or without a proxied port.
		{name: "environment sets the proxy token", edit: func(m map[string]any) {
			setEnv(m, 0, pair("ZOE_PROXY_TOKEN", "guessable"))
			setEnv(m, 1, pair("ZOE_PROXY_TOKEN", ""))
			portOf(m, 1, 0)["proxy"] = true
		}, want: []want{{w0 + "environment[0][0]", "ZOE_PROXY_TOKEN is set by Zoe"},
			{w1 + "environment[0][0]", "ZOE_PROXY_TOKEN is set by Zoe"}}},
		{name: "template unknown variable", edit: func(m map[string]any) { setEnv(m, 1, pair("A", "{user}")) },
			want: []want{{w1 + "environment[0][1]", "unknown variable {user}; the known variables are {user_name}, {execution_id}, {execution_name}, {deployment_name}, {dns_name#self} and {dns_name#<instance>} for an instance of this ZApp (master0, worker0 … worker3)"}}},
		{name: "template unbalanced", edit: func(m map[string]any) { setEnv(m, 1, pair("A", "x{user_name"), pair("B", "a}b"), pair("C", "{}")) },
			want: []want{{w1 + "environment[0][1]", `unbalanced "{" at character 2: write "{{" for a literal brace`},
				{w1 + "environment[1][1]", `single "}" at character 2: write "}}" for a literal brace`},
				{w1 + "environment[2][1]", `empty "{}" at character 1`}}},
		{name: "template instance out of range", edit: func(m map[string]any) { setEnv(m, 0, pair("LAST", "{dns_name#worker4}")) },
			want: []want{{w0 + "environment[0][1]", "{dns_name#worker4} names no instance of this ZApp; its instances are master0, worker0 … worker3"}}},
		{name: "template unknown instance", edit: func(m map[string]any) {
			setEnv(m, 0, pair("M", "{dns_name#spark-master0}"), pair("N", "{dns_name#Master0}"))
		},
			want: []want{{w0 + "environment[0][1]", "{dns_name#spark-master0} names no instance"}, {w0 + "environment[1][1]", "{dns_name#Master0} names no instance"}}},
		// Volumes.
		{name: "volume keys missing", edit: func(m map[string]any) { delete(volOf(m, 0, 0), "read_only"); delete(volOf(m, 0, 0), "path") },
			want: []want{{w0 + "volumes[0].path", "is required"}, {w0 + "volumes[0].read_only", "is required"}}},
		{name: "volume in format 2", edit: func(m map[string]any) { svcOf(m, 0)["volumes"] = []any{[]any{"/srv", "/data", true}} },
			want: []want{{w0 + "volumes[0]", "must be an object, got an array of 3 elements"}}},
		{name: "volume names", edit: func(m map[string]any) {
			svcOf(m, 0)["volumes"] = []any{
				map[string]any{"name": "a/b", "path": "/x", "read_only": true},
				map[string]any{"name": "..", "path": "/x", "read_only": true},
				map[string]any{"name": "workspace", "path": "/x", "read_only": true},
				map[string]any{"name": "", "path": "/x", "read_only": true},
				map[string]any{"name": "data", "path": "/x", "read_only": true},
				map[string]any{"name": "data", "path": "relative/dir", "read_only": false, "mode": "rw"},
			}
		}, want: []want{{w0 + "volumes[0].name", `must be a single path element, as the volume is mounted at /mnt/<name>, got "a/b"`},
			{w0 + "volumes[1].name", `got ".."`},
			{w0 + "volumes[2].name", "workspace is reserved: Zoe mounts the user's workspace at /mnt/workspace"},
			{w0 + "volumes[3].name", "must not be empty"},
			{w0 + "volumes[5].name", "repeats volumes[4]: both would be mounted at /mnt/data"},
			{w0 + "volumes[5].path", `must be an absolute host path, got "relative/dir"`},
			{w0 + "volumes[5].mode", "unknown key; the known keys are name, path, read_only"}}},
		// Command, work_dir, labels, network.
		{name: "command missing", edit: func(m map[string]any) { delete(svcOf(m, 0), "command") }, want: []want{{w0 + "command", "is required"}}},
		{name: "command empty", edit: func(m map[string]any) { svcOf(m, 0)["command"] = "" },
			want: []want{{w0 + "command", "must not be empty: use null to keep the image's command"}}},
		{name: "command needs a shell", edit: func(m map[string]any) { svcOf(m, 0)["command"] = "echo $HOME | wc" },
			want: []want{{w0 + "command", "a shell expansion ($HOME) at character 6: Zoe runs the command without a shell: " +
				"quote it to pass it as it is, or write sh -c '...' to run a shell"}}},
		{name: "command unterminated quote", edit: func(m map[string]any) { svcOf(m, 0)["command"] = `sh -c 'echo a` },
			want: []want{{w0 + "command", "cannot be split into words: at character 7: reached EOF without closing quote `'`"}}},
		{name: "command blank", edit: func(m map[string]any) { svcOf(m, 0)["command"] = "  " },
			want: []want{{w0 + "command", "holds no word: use null to keep the image's command"}}},
		{name: "command array", edit: func(m map[string]any) { svcOf(m, 0)["command"] = []any{"sh", "-c"} },
			want: []want{{w0 + "command", "must be a string or null, got an array of 2 elements"}}},
		{name: "work_dir relative", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "src" },
			want: []want{{w0 + "work_dir", `must be an absolute path, got "src"`}}},
		{name: "work_dir empty", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "" },
			want: []want{{w0 + "work_dir", "must not be empty; leave the key out instead"}}},
		{name: "work_dir under proc", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/proc/self/fd/7" },
			want: []want{{w0 + "work_dir", `must not be under /proc, the kernel's files, got "/proc/self/fd/7"`}}},
		{name: "work_dir sys", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/sys" },
			want: []want{{w0 + "work_dir", "must not be under /sys"}}},
		{name: "work_dir under dev", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/dev/shm" },
			want: []want{{w0 + "work_dir", "must not be under /dev"}}},
		{name: "work_dir dot-dot", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/mnt/../proc/self/fd/7" },
			want: []want{{w0 + "work_dir", `must be a clean path (no "..", ".", "//" or trailing "/"), got "/mnt/../proc/self/fd/7"`}}},
		{name: "work_dir not clean", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/mnt//workspace/" },
			want: []want{{w0 + "work_dir", "must be a clean path"}}},
		{name: "work_dir control character", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/mnt/\u202e" },
			want: []want{{w0 + "work_dir", "must not hold control or format characters (U+202E at byte 5)"}}},
		{name: "work_dir long", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/" + strings.Repeat("a", 2000) },
			want: []want{{w0 + "work_dir", "must be at most 1024 bytes, got 2001"}}},
		{name: "work_dir proc look-alike", edit: func(m map[string]any) { svcOf(m, 0)["work_dir"] = "/processing" }},
		{name: "volume path control character", edit: func(m map[string]any) {
			svcOf(m, 0)["volumes"] = []any{map[string]any{"name": "s", "path": "/tmp/reva/scratch/\u202e", "read_only": true}}
		}, want: []want{{w0 + "volumes[0].path", "must not hold control or format characters (U+202E at byte 18)"}}},
		{name: "volume path invalid UTF-8", edit: func(m map[string]any) {
			svcOf(m, 0)["volumes"] = []any{map[string]any{"name": "s", "path": "/tmp/\xff", "read_only": true}}
		}, want: []want{{w0 + "volumes[0].path", "must not hold U+FFFD"}}},
		{name: "volume path long", edit: func(m map[string]any) {
			svcOf(m, 0)["volumes"] = []any{map[string]any{"name": "s", "path": "/" + strings.Repeat("a/", 3000), "read_only": true}}
		}, want: []want{{w0 + "volumes[0].path", "must be at most 1024 bytes, got 6001"}}},
		{name: "network host", edit: func(m map[string]any) { svcOf(m, 0)["network"] = "host" },
			want: []want{{w0 + "network", `"host" is refused: every execution gets its own network`}}},
		{name: "network of a container", edit: func(m map[string]any) { svcOf(m, 0)["network"] = "container:db" },
			want: []want{{w0 + "network", "Zoe does not take a network from the ZApp"}}},
		{name: "network named, ignored", edit: func(m map[string]any) { svcOf(m, 0)["network"] = "my-net" }},
		{name: "labels", edit: func(m map[string]any) { svcOf(m, 0)["labels"] = []any{"gpu", "", "gpu", 7} },
			want: []want{{w0 + "labels[1]", "must not be empty"}, {w0 + "labels[2]", `repeats labels[0] ("gpu")`},
				{w0 + "labels[3]", "must be a string, got the number 7"}}},
		{name: "network empty", edit: func(m map[string]any) { svcOf(m, 0)["network"] = "" },
			want: []want{{w0 + "network", "must not be empty"}}},
		{name: "network number", edit: func(m map[string]any) { svcOf(m, 0)["network"] = 5 },
			want: []want{{w0 + "network", "must be a string, got the number 5"}}},
		// Everything at once; semantic rules about undecodable values are
		// skipped rather than reported twice.
		{name: "many problems", edit: func(m map[string]any) {
			m["name"] = "x"
			m["extra"] = true
			delete(m, "size")
			s0 := svcOf(m, 0)
			s0["monitor"] = false
			s0["total_count"] = "one"
			s0["imag"] = s0["image"]
			delete(s0, "image")
			portOf(m, 0, 0)["port_number"] = 0
			s1 := svcOf(m, 1)
			s1["essential_count"] = 5
			resOf(m, 1, "memory")["min"] = 10
			resOf(m, 1, "cores")["max"] = 100
			setEnv(m, 1, pair("ZOE_UID", "{uid}"), pair("A", "{dns_name#nobody0}"))
		}, want: []want{
			{"name", "must be 3 to 128 characters long, got 1"},
			{"size", "is required"},
			{w0 + "image", "is required"},
			{w0 + "total_count", `must be an integer, got the string "one"`},
			{w0 + "imag", `did you mean "image"?`},
			{w0 + "ports[0].port_number", "must be between 1 and 65535"},
			{w1 + "total_count", "must be at least essential_count (5), got 4"},
			{w1 + "resources.memory.min", "must be at least 1024 bytes, got 10"},
			{w1 + "resources.cores.max", "must be at most 16 (the administrative limit max_service_cores), got 100"},
			{w1 + "environment[0][0]", "ZOE_UID is set by Zoe"},
			{w1 + "environment[0][1]", "unknown variable {uid}"},
			{"extra", "unknown key"},
			// Both monitor values decoded, so the rule applies; but no
			// {dns_name#nobody0} problem: services[0]'s total_count is unknown.
			{"services", "no service has monitor set to true"},
		}},
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestLoadTable(t *testing.T) {
	cases := loadCases()
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := c.raw
			if c.edit != nil {
				m := base()
				c.edit(m)
				doc = mustJSON(m)
			}
			l := DefaultLimits()
			if c.limits != nil {
				l = *c.limits
			}
			a, err := Load([]byte(doc), l)
			if c.want == nil {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				if a == nil {
					t.Fatal("nil App without error")
				}
				return
			}
			var probs Problems
			if err != nil {
				var ok bool
				if probs, ok = err.(Problems); !ok {
					t.Fatalf("error is %T, not Problems", err)
				}
			}
			if a != nil {
				t.Error("App returned along with problems")
			}
			checkProblems(t, probs, c.want)
		})
	}
}

// checkProblems checks that got holds exactly the wanted problems, each
// matched by path and message substring.
func checkProblems(t *testing.T, got Problems, wants []want) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range wants {
		found := false
		for i, p := range got {
			if !used[i] && p.Path == w.path && strings.Contains(p.Message, w.msg) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing problem %s: …%s…", w.path, w.msg)
		}
	}
	for i, p := range got {
		if !used[i] {
			t.Errorf("unexpected problem %s", p)
		}
	}
	if t.Failed() {
		t.Logf("all problems:\n%v", got)
	}
}
