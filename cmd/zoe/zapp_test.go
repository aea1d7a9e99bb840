package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoe-project/zoe/core/zapp"
)

const zappTestdata = "../../core/zapp/testdata/"

// zappRun runs the zoe command in-process, with the argument rewriting of
// main.
func zappRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := rootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(goStyleFlags(args, "config"))
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// zappFile writes a file into a fresh directory and returns its path.
func zappFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A description with several problems at once.
const zappBroken = `{
  "name": "x",
  "version": 3,
  "will_end": false,
  "size": 0,
  "services": [{
    "name": "nb", "image": "jupyter:1", "monitor": true, "startup_order": 0,
    "essential_count": 2, "total_count": 1,
    "resources": {"memory": {"min": 100, "max": null}, "cores": {"min": 1, "max": null}},
    "ports": [], "environment": [["HOME_URL", "{dns_name#notebook0}"]], "volumes": [], "command": null
  }]
}`

func TestZAppValidateCLI(t *testing.T) {
	spark, batch, jupyter := zappTestdata+"spark.json", zappTestdata+"batch.json", zappTestdata+"jupyter.json"
	broken := zappFile(t, "broken.json", zappBroken)
	syntax := zappFile(t, "syntax.json", "{\n  \"name\": \"abc\"\n  \"version\": 3\n}\n")
	missing := filepath.Join(t.TempDir(), "missing.json")
	limits := zappFile(t, "zoe.hcl", "limits {\n  max_service_memory = \"6GiB\"\n  max_service_cores = 2\n}\n")
	badConfig := zappFile(t, "bad.hcl", "limits {\n  max_service_cores = 0\n}\n")
	policyConfig := zappFile(t, "policy.hcl", "containers {\n  host_path \"/srv/datasets\" {}\n"+
		"  host_path \"/scratch/zoe\" {\n    read_only = false\n    roles = [\"admin\"]\n  }\n}\n")

	cases := []struct {
		name   string
		args   []string
		stdout []string
		stderr string // substring
		err    string // "" for success
	}{
		{name: "all valid", args: []string{spark, batch, jupyter},
			stdout: []string{spark + ": valid", batch + ": valid", jupyter + ": valid"}},
		{name: "one invalid", args: []string{broken},
			stdout: []string{
				broken + ": name: must be 3 to 128 characters long, got 1 (\"x\")",
				broken + ": services[0].name: must be 3 to 16 characters long, got 2 (\"nb\")",
				broken + ": services[0].total_count: must be at least essential_count (2), got 1",
				broken + ": services[0].resources.memory.min: must be at least 1024 bytes, got 100",
				broken + ": services[0].environment[0][1]: {dns_name#notebook0} names no instance of this ZApp; its instances are nb0",
			},
			err: broken + " is invalid"},
		{name: "several files", args: []string{spark, syntax, missing, broken},
			stdout: []string{
				spark + ": valid",
				syntax + ":3:3: invalid character '\"' after object key:value pair",
				missing + ": cannot read: no such file or directory",
				broken + ": name: must be 3 to 128 characters long, got 1 (\"x\")",
				"", "", "", "",
			},
			err: "3 of 4 files are invalid"},
		{name: "limits from the configuration", args: []string{"-config", limits, spark, jupyter},
			stdout: []string{
				spark + ": services[1].resources.memory.min: must be at most 6 GiB (the administrative limit max_service_memory), got 8 GiB",
				spark + ": services[1].resources.memory.max: must be at most 6 GiB (the administrative limit max_service_memory), got 12 GiB",
				spark + ": services[1].resources.cores.max: must be at most 2 (the administrative limit max_service_cores), got 4",
				jupyter + ": services[0].resources.memory.max: must be at most 6 GiB (the administrative limit max_service_memory), got 8 GiB",
				jupyter + ": services[0].resources.cores.max: must be at most 2 (the administrative limit max_service_cores), got 4",
			},
			err: "2 of 2 files are invalid"},
		{name: "the container policy of the configuration", args: []string{"-config", policyConfig, jupyter, batch},
			stdout: []string{
				jupyter + ": valid",
				batch + ": services[0].volumes[0].path: /data/imagenet is not under a host path the administrator allows (allowed: /srv/datasets read-only)",
				batch + ": services[0].volumes[1].path: /scratch/zoe is under /scratch/zoe, which the administrator allows only for the roles admin",
			},
			err: "1 of 2 files is invalid"},
		{name: "the container policy for admins", args: []string{"-config", policyConfig, "--role", "admin", batch},
			stdout: []string{
				batch + ": services[0].volumes[0].path: /data/imagenet is not under a host path the administrator allows (allowed: /srv/datasets read-only, /scratch/zoe read-write)",
			},
			err: batch + " is invalid"},
		{name: "an unknown role", args: []string{"-config", policyConfig, "--role", "root", batch}, err: `--role "root"`},
		{name: "broken configuration", args: []string{"--config", badConfig, spark},
			stderr: "Invalid core limit", err: "configuration " + badConfig + " is invalid"},
		{name: "no file", args: []string{}, err: "requires at least 1 arg"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, err := zappRun(t, append([]string{"zapp", "validate"}, c.args...)...)
			checkErr(t, err, c.err)
			if c.stdout != nil {
				lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
				if len(lines) != len(c.stdout) {
					t.Errorf("stdout has %d lines, want %d:\n%s", len(lines), len(c.stdout), stdout)
				}
				for i, want := range c.stdout {
					if want != "" && (i >= len(lines) || lines[i] != want) {
						t.Errorf("line %d: want\n%s\nin\n%s", i+1, want, stdout)
					}
				}
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, c.stderr)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestZAppExpandCLI(t *testing.T) {
	spark := zappTestdata + "spark.json"
	stdout, _, err := zappRun(t, "zapp", "expand", spark, "--user", "bob", "--execution-id", "7", "--deployment", "Test", "--uid", "1001")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"spark-cluster: 7 instances (4 essential, 3 elastic)\n",
		"\nspark-master0 (essential, service spark-master, startup order 0)\n  dns name:    spark-master0-7-test\n  image:       zoerepo/spark-master:3.5.1\n  memory:      2 GiB reserved, limit 2 GiB\n  cores:       1 reserved, no limit\n  ports:       8080/tcp \"Spark master web UI\" http://{ip_port}/\n               7077/tcp \"Spark master\"\n  environment:\n    SPARK_MASTER_HOST=spark-master0-7-test\n",
		"\nspark-worker4 (elastic, service spark-worker, startup order 1)\n",
		"\nnotebook0 (essential, service notebook, startup order 2, monitor)\n",
		"    SPARK_MASTER=spark://spark-master0-7-test:7077\n",
		"    ZOE_USER=bob\n    ZOE_UID=1001\n    SERVICE_NAME=notebook0\n",
		"    REVERSE_PROXY_PATH_8888=/proxy/7/notebook0/8888\n",
		"    ZOE_PROXY_TOKEN=<a secret made at submission>\n",
		"  command:     start-notebook.sh --NotebookApp.token=''\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "ZOE_GID") {
		t.Error("ZOE_GID set though --gid was not given")
	}

	stdout, _, err = zappRun(t, "zapp", "expand", "--json", zappTestdata+"batch.json")
	if err != nil {
		t.Fatal(err)
	}
	var insts []zapp.Instance
	if err := json.Unmarshal([]byte(stdout), &insts); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if len(insts) != 1 || insts[0].Name != "trainer0" || insts[0].DNSName != "trainer0-1-prod" ||
		insts[0].MemoryLimit != 32<<30 || insts[0].Shm != 2<<30 ||
		!strings.Contains(stdout, `"command": "python /mnt/workspace/train.py --epochs 20"`) {
		t.Errorf("JSON output:\n%s", stdout)
	}

	// The configuration's deployment name applies unless --deployment is given.
	cfg := zappFile(t, "zoe.hcl", "deployment_name = \"lab\"\n")
	stdout, _, err = zappRun(t, "zapp", "expand", "-config", cfg, zappTestdata+"jupyter.json")
	if err != nil || !strings.Contains(stdout, "dns name:    jupyter0-1-lab") {
		t.Errorf("%v:\n%s", err, stdout)
	}

	broken := zappFile(t, "broken.json", zappBroken)
	_, stderr, err := zappRun(t, "zapp", "expand", broken)
	checkErr(t, err, broken+" is invalid")
	if !strings.Contains(stderr, broken+": services[0].total_count: must be at least essential_count (2), got 1\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestZAppConvertCLI(t *testing.T) {
	stdout, stderr, err := zappRun(t, "zapp", "convert", zappTestdata+"v2-spark.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zapp.Load([]byte(stdout), zapp.DefaultLimits()); err != nil {
		t.Errorf("converted output does not load: %v\n%s", err, stdout)
	}
	if !strings.HasPrefix(stdout, "{\n  \"name\": \"spark-jupyter\",\n  \"version\": 3,\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	warnings := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(warnings) != 5 || warnings[0] != zappTestdata+"v2-spark.json: warning: priority: format 3 has no priority; "+
		"it became size 512, the SIZE scheduling hint, as the original did for old executions" {
		t.Errorf("stderr:\n%s", stderr)
	}

	_, stderr, err = zappRun(t, "zapp", "convert", zappTestdata+"spark.json")
	checkErr(t, err, "spark.json cannot be converted")
	if !strings.Contains(stderr, "spark.json: version: this is format version 3; only formats 1 and 2 are converted") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// The real binary: exit status 1 and one "zoe: ..." line for invalid files.
func TestZAppValidateExitStatus(t *testing.T) {
	broken := zappFile(t, "broken.json", zappBroken)
	r := runZoe(t, "", "zapp", "validate", zappTestdata+"spark.json", broken)
	if r.code != 1 || r.stderr != "zoe: 1 of 2 files is invalid\n" || !strings.HasPrefix(r.stdout, zappTestdata+"spark.json: valid\n") {
		t.Errorf("code %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = runZoe(t, "", "zapp", "validate", zappTestdata+"spark.json")
	if r.code != 0 || r.stdout != zappTestdata+"spark.json: valid\n" {
		t.Errorf("code %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
