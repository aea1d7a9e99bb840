package kube

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/zoe-project/zoe/sdk"
	"github.com/zoe-project/zoe/sdk/backend"
)

func testRuntime() *runtime {
	return &runtime{deployment: "dev", namespace: "zoe-dev", set: settings{pidsLimit: 1024, grace: 10, clusterDomain: "cluster.local",
		endpointMode: modeNodePort, pullPolicy: corev1.PullIfNotPresent, pendingTimeout: time.Minute, nodeSelector: labels.Everything()}}
}

func okSpec() backend.ServiceSpec {
	return backend.ServiceSpec{Name: "web0-7-dev", Hostname: "web0-7-dev", Image: "zoe-test/http:1", User: "1000:1000",
		Network: "zoe-dev-7", Node: "n1", Command: []string{"serve", "--port", "8080", "$(HOME)", "$$"}, WorkDir: "/mnt/workspace",
		Environment: map[string]string{"B": "$(A)", "A": "1"},
		Labels:      map[string]string{"zoe.execution": "7", "zoe.owner": "alice@example.org", "sidecar.istio.io/inject": "true", "zoe.pod": "other"},
		Resources:   backend.Resources{Cores: 0.5, MemoryReservation: 32 << 20, MemoryLimit: 64 << 20, ShmSize: 1 << 20},
		Volumes:     []backend.Volume{{HostPath: "/srv/ws/alice", MountPoint: "/mnt/workspace"}, {VolumeName: "data", MountPoint: "/mnt/data", ReadOnly: true}},
		Ports:       []backend.Port{{Port: 8080, Protocol: "tcp"}}}
}

// TestPodPolicy: the pod carries the whole container policy, explicitly.
func TestPodPolicy(t *testing.T) {
	pod, err := testRuntime().podFor(okSpec())
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	sc, psc := c.SecurityContext, pod.Spec.SecurityContext
	checks := []struct {
		what string
		ok   bool
	}{
		{"runs as 1000:1000", psc.RunAsUser != nil && *psc.RunAsUser == 1000 && psc.RunAsGroup != nil && *psc.RunAsGroup == 1000},
		{"runAsNonRoot", psc.RunAsNonRoot != nil && *psc.RunAsNonRoot},
		{"not privileged", sc.Privileged != nil && !*sc.Privileged},
		{"no privilege escalation", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"every capability dropped", sc.Capabilities != nil && len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0},
		{"seccomp RuntimeDefault", sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"no host namespaces", !pod.Spec.HostNetwork && !pod.Spec.HostPID && !pod.Spec.HostIPC},
		{"no account token", pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken},
		{"restart never", pod.Spec.RestartPolicy == corev1.RestartPolicyNever},
		{"the image's entrypoint kept, the command as its arguments, $ kept literal",
			len(c.Command) == 0 && strings.Join(c.Args, " ") == "serve --port 8080 $$(HOME) $$$$"},
		{"env sorted, $ kept literal", len(c.Env) == 2 && c.Env[0].Name == "A" && c.Env[1].Name == "B" && c.Env[1].Value == "$$(A)"},
		{"only the spec's group", psc.SupplementalGroupsPolicy != nil && *psc.SupplementalGroupsPolicy == corev1.SupplementalGroupsPolicyStrict},
		{"recursive read-only", c.VolumeMounts[1].RecursiveReadOnly != nil && c.VolumeMounts[0].RecursiveReadOnly == nil},
		{"requests: the reservation", c.Resources.Requests.Cpu().MilliValue() == 500 && c.Resources.Requests.Memory().Value() == 32<<20},
		{"limits: the memory limit, no cpu cap", c.Resources.Limits.Memory().Value() == 64<<20 && c.Resources.Limits.Cpu().IsZero()},
		{"the execution's subdomain and search domain", pod.Spec.Subdomain == "zoe-dev-7" && pod.Spec.DNSConfig != nil &&
			len(pod.Spec.DNSConfig.Searches) == 1 && pod.Spec.DNSConfig.Searches[0] == "zoe-dev-7.zoe-dev.svc.cluster.local"},
		{"hostname", pod.Spec.Hostname == "web0-7-dev"},
		{"node affinity to n1", affinityNode(pod) == "n1"},
		{"host path never created", pod.Spec.Volumes[0].HostPath != nil && pod.Spec.Volumes[0].HostPath.Type != nil &&
			*pod.Spec.Volumes[0].HostPath.Type == corev1.HostPathDirectory},
		{"named volume read-only claim", pod.Spec.Volumes[1].PersistentVolumeClaim != nil && pod.Spec.Volumes[1].PersistentVolumeClaim.ClaimName == "data" &&
			c.VolumeMounts[1].ReadOnly && !c.VolumeMounts[0].ReadOnly},
		{"/dev/shm of memory", len(pod.Spec.Volumes) == 3 && pod.Spec.Volumes[2].EmptyDir != nil && pod.Spec.Volumes[2].EmptyDir.Medium == corev1.StorageMediumMemory &&
			c.VolumeMounts[2].MountPath == "/dev/shm"},
		{"labels Kubernetes accepts, and all of them as an annotation", pod.Labels["zoe.execution"] == "7" && pod.Labels[LabelDeployment] == "dev" &&
			pod.Labels["zoe.owner"] == "" && zoeLabels(pod.ObjectMeta)["zoe.owner"] == "alice@example.org"},
		{"no label but Zoe's own, none steering a selector", pod.Labels["sidecar.istio.io/inject"] == "" && pod.Labels[LabelPod] == "web0-7-dev" &&
			zoeLabels(pod.ObjectMeta)["sidecar.istio.io/inject"] == "true"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not so in %+v", c.what, pod.Spec)
		}
	}
}

// TestPodRefused: what the cluster could not honour is refused before
// anything is made.
func TestPodRefused(t *testing.T) {
	cases := []struct {
		name   string
		change func(*backend.ServiceSpec)
		rt     func(*runtime)
		want   string
	}{
		{"no user", func(s *backend.ServiceSpec) { s.User = "" }, nil, "no user"},
		{"root", func(s *backend.ServiceSpec) { s.User = "0:0" }, nil, "root"},
		{"no gid", func(s *backend.ServiceSpec) { s.User = "1000" }, nil, "no gid"},
		{"lower pids limit than the kubelets'", func(s *backend.ServiceSpec) { s.Resources.PidsLimit = 100 }, nil, "kubelets enforce 1024"},
		{"kubelets without a limit", nil, func(r *runtime) { r.set.pidsLimit = -1 }, "kubelets enforce none"},
		{"name too long", func(s *backend.ServiceSpec) { s.Name = strings.Repeat("a", 64) }, nil, "pod name"},
		{"upper case name", func(s *backend.ServiceSpec) { s.Name = "Web" }, nil, "pod name"},
		{"host network", func(s *backend.ServiceSpec) { s.Network = "host" }, nil, "host"},
		{"relative host path", func(s *backend.ServiceSpec) { s.Volumes[0].HostPath = "ws" }, nil, "absolute"},
		{"bad port protocol", func(s *backend.ServiceSpec) { s.Ports[0].Protocol = "sctp" }, nil, "tcp or udp"},
		{"reservation over the limit", func(s *backend.ServiceSpec) { s.Resources.MemoryReservation = 1 << 30 }, nil, "over the limit"},
		{"bad host name", func(s *backend.ServiceSpec) { s.Hostname = "a_b" }, nil, "host name"},
		{"ports of a pod whose Service name would start with a digit", func(s *backend.ServiceSpec) { s.Name = "9web-7-dev" }, nil, "Service"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, rt := okSpec(), testRuntime()
			if c.change != nil {
				c.change(&spec)
			}
			if c.rt != nil {
				c.rt(rt)
			}
			_, err := rt.podFor(spec)
			if !errors.Is(err, sdk.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("podFor = %v; want invalid argument saying %q", err, c.want)
			}
		})
	}
	t.Run("no limit asked, none enforced", func(t *testing.T) {
		spec, rt := okSpec(), testRuntime()
		spec.Resources.PidsLimit, rt.set.pidsLimit = -1, -1
		if _, err := rt.podFor(spec); err != nil {
			t.Errorf("podFor = %v", err)
		}
	})
	t.Run("a lower limit enforced than asked", func(t *testing.T) {
		spec, rt := okSpec(), testRuntime()
		spec.Resources.PidsLimit, rt.set.pidsLimit = 4096, 512
		if _, err := rt.podFor(spec); err != nil {
			t.Errorf("podFor = %v", err)
		}
	})
}

func TestPortsServiceName(t *testing.T) {
	for _, pod := range []string{"web0-7-dev", strings.Repeat("a", 50) + "-12345-dev", strings.Repeat("b", 63)} {
		n := portsServiceName(pod)
		if errs := validation.IsDNS1035Label(n); len(errs) > 0 {
			t.Errorf("%q → %q: %v", pod, n, errs)
		}
		if !strings.HasSuffix(n, "-ports") {
			t.Errorf("%q → %q: want the -ports suffix no host name has", pod, n)
		}
	}
	a, b := portsServiceName(strings.Repeat("a", 55)+"-1-dev"), portsServiceName(strings.Repeat("a", 55)+"-2-dev")
	if a == b {
		t.Errorf("two pods, one service name %q", a)
	}
}

func terminated(code int32, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: ContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}
}

func TestPodState(t *testing.T) {
	running := corev1.ContainerStatus{Name: ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
	waiting := corev1.ContainerStatus{Name: ContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	cases := []struct {
		name  string
		st    corev1.PodStatus
		state backend.ServiceState
		code  int
		oom   bool
	}{
		{"pending", corev1.PodStatus{Phase: corev1.PodPending}, backend.ServiceCreated, 0, false},
		{"creating", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{waiting}}, backend.ServiceCreated, 0, false},
		{"running", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running}}, backend.ServiceRunning, 0, false},
		{"exit 3", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{terminated(3, "Error")}}, backend.ServiceExited, 3, false},
		{"oom", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{terminated(137, "OOMKilled")}}, backend.ServiceExited, 137, true},
		{"succeeded", corev1.PodStatus{Phase: corev1.PodSucceeded}, backend.ServiceExited, 0, false},
		{"evicted before any status", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}, backend.ServiceExited, -1, false},
		{"ended while the phase still says running", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{terminated(0, "Completed")}}, backend.ServiceExited, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state, code, oom, _ := podState(&corev1.Pod{Status: c.st})
			if state != c.state || code != c.code || oom != c.oom {
				t.Errorf("podState = %s %d %t; want %s %d %t", state, code, oom, c.state, c.code, c.oom)
			}
		})
	}
}

func TestTransition(t *testing.T) {
	pod := func(st corev1.ContainerStatus, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}, Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{st}}}
	}
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	running := pod(corev1.ContainerStatus{Name: ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, corev1.PodRunning)
	oom := pod(terminated(137, "OOMKilled"), corev1.PodFailed)
	kinds := func(evs []backend.Event) string {
		var s []string
		for _, e := range evs {
			s = append(s, string(e.Kind))
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name     string
		old, new *corev1.Pod
		want     string
	}{
		{"created", nil, pending, ""},
		{"started", pending, running, "started"},
		{"still running", running, running, ""},
		{"oom", running, oom, "oom_killed,exited"},
		{"ended before it was seen running", pending, pod(terminated(3, "Error"), corev1.PodFailed), "started,exited"},
		{"ended, seen again", oom, oom, ""},
	}
	for _, c := range cases {
		if got := kinds(transition(c.old, c.new)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if evs := transition(running, oom); evs[1].ExitCode != 137 || evs[1].ServiceName != "p" || evs[1].HandleID != "u" {
		t.Errorf("exit event %+v", evs[1])
	}
}

func TestNodeLabelsAndState(t *testing.T) {
	got := nodeLabels(map[string]string{"zoe.label/gpu": "true", "zoe.label/zone": "eu", "zoe.label/ssd": "", "kubernetes.io/os": "linux"}, "zoe.label/")
	if strings.Join(got, " ") != "gpu ssd zone=eu" {
		t.Errorf("nodeLabels = %q", got)
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	cases := []struct {
		name string
		node corev1.Node
		want backend.NodeState
	}{
		{"ready", corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}, backend.NodeReady},
		{"cordoned", corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}, backend.NodeDisabled},
		{"tainted", corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}, backend.NodeDisabled},
		{"not ready", corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}}}, backend.NodeUnreachable},
		{"no condition", corev1.Node{}, backend.NodeUnreachable},
	}
	for _, c := range cases {
		if got, _ := nodeState(&c.node); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestParseLogLine(t *testing.T) {
	e, ok := parseLogLine([]byte("2026-12-06T20:00:01.123456789Z hello world"))
	if !ok || string(e.Line) != "hello world" || e.Time.Nanosecond() != 123456789 || e.Stream != backend.Stdout {
		t.Errorf("parseLogLine = %+v, %t", e, ok)
	}
	if e, ok := parseLogLine([]byte("2026-12-06T20:00:01Z")); !ok || len(e.Line) != 0 {
		t.Errorf("an empty line: %+v, %t", e, ok)
	}
	if _, ok := parseLogLine([]byte("no time here")); ok {
		t.Error("a line without a time was taken")
	}
}

// TestReadLogLines: lines with their times; a line longer than maxLogLine
// is cut into parts with the line's time, and the lines after it still
// come (a scanner would have stopped there).
func TestReadLogLines(t *testing.T) {
	long := strings.Repeat("x", 2*maxLogLine+10)
	in := "2026-12-06T20:00:01Z one\n2026-12-06T20:00:02Z " + long + "\n2026-12-06T20:00:03Z three\n2026-12-06T20:00:04Z no newline"
	var got []backend.LogEntry
	if err := readLogLines(bufio.NewReaderSize(strings.NewReader(in), 64<<10), func(e backend.LogEntry) bool {
		got = append(got, e)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	var joined strings.Builder
	for _, e := range got[1 : len(got)-2] {
		joined.Write(e.Line)
		if e.Time.Second() != 2 {
			t.Errorf("a part of the long line has time %v, want the line's", e.Time)
		}
	}
	if string(got[0].Line) != "one" || joined.String() != long || string(got[len(got)-2].Line) != "three" ||
		string(got[len(got)-1].Line) != "no newline" || len(got) < 5 {
		t.Errorf("got %d entries: first %q, last two %q %q, long line whole: %t", len(got), got[0].Line,
			got[len(got)-2].Line, got[len(got)-1].Line, joined.String() == long)
	}
}

func TestImageNames(t *testing.T) {
	for _, c := range []struct {
		in, want []string
	}{
		{[]string{"docker.io/zoe-test/job:1"}, []string{"docker.io/zoe-test/job:1", "zoe-test/job:1"}},
		{[]string{"docker.io/library/python:3.12", "docker.io/library/python@sha256:ab"},
			[]string{"docker.io/library/python:3.12", "docker.io/library/python@sha256:ab", "library/python:3.12", "python:3.12", "library/python@sha256:ab", "python@sha256:ab"}},
		{[]string{"registry.example.org/team/app:2"}, []string{"registry.example.org/team/app:2"}},
		{nil, nil},
	} {
		if got := imageNames(c.in); !slices.Equal(got, c.want) {
			t.Errorf("imageNames(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestWorkspaceClaim: with workspace_claims, the workspace's host path
// becomes the owner's claim, which the owner's group may write to; other
// volumes stay as they are.
func TestWorkspaceClaim(t *testing.T) {
	rt := testRuntime()
	spec := okSpec()
	spec.Labels["zoe.owner"] = "Alice@example.org"
	if got, err := rt.workspaceClaim(spec); err != nil || !slices.Equal(got.Volumes, spec.Volumes) {
		t.Errorf("off: %+v %v, want the volumes as they are", got.Volumes, err)
	}
	rt.set.workspaceClaims = true
	got, err := rt.workspaceClaim(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := workspaceClaimName("dev", "Alice@example.org")
	if got.Volumes[0] != (backend.Volume{VolumeName: want, MountPoint: "/mnt/workspace"}) || got.Volumes[1] != spec.Volumes[1] {
		t.Errorf("volumes %+v, want the workspace as claim %s, the rest as they were", got.Volumes, want)
	}
	if spec.Volumes[0].HostPath == "" {
		t.Error("the caller's spec was changed")
	}
	pod, err := rt.podFor(got)
	if err != nil {
		t.Fatal(err)
	}
	if v := pod.Spec.Volumes[0]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != want {
		t.Errorf("the pod's workspace volume %+v, want the claim %s", v, want)
	}
	if sc := pod.Spec.SecurityContext; sc.FSGroup == nil || *sc.FSGroup != 1000 || sc.FSGroupChangePolicy == nil {
		t.Errorf("security context %+v, want fsGroup 1000 (the owner's group) on root mismatch", sc)
	}
	delete(spec.Labels, "zoe.owner")
	if _, err := rt.workspaceClaim(spec); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Errorf("no owner: %v, want invalid argument", err)
	}

	names := map[string]string{}
	if workspaceClaimName("dev", "alice") == workspaceClaimName("prod", "alice") {
		t.Error("two deployments share alice's claim")
	}
	for _, owner := range []string{"alice", "Alice", "a.b", "a-b", strings.Repeat("x", 300), "élodie"} {
		n := workspaceClaimName("dev", owner)
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			t.Errorf("%q: claim %q: %v", owner, n, errs)
		}
		if other, ok := names[n]; ok {
			t.Errorf("%q and %q share the claim %s", owner, other, n)
		}
		names[n] = owner
	}
}

// TestNotAdmittedKinds: a pod its node refused before any container ran
// is tried again later only when room may come.
func TestNotAdmittedKinds(t *testing.T) {
	for reason, want := range map[string]error{
		"OutOfcpu": sdk.ErrResourceExhausted, "OutOfmemory": sdk.ErrResourceExhausted, "Evicted": sdk.ErrResourceExhausted,
		"SupplementalGroupsPolicyNotSupported": sdk.ErrInvalidArgument, "NodeAffinity": sdk.ErrInvalidArgument,
	} {
		pod := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: reason}}
		if _, err := started(pod); !errors.Is(err, want) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v, want %v with the reason", reason, err, want)
		}
	}
}

// TestReadLogLinesCut: a stream cut in the middle of a line sends the lines
// before it whole and not the part, which a read after sends whole.
func TestReadLogLinesCut(t *testing.T) {
	cut := errors.New("cut")
	r := bufio.NewReader(io.MultiReader(strings.NewReader("2026-12-06T10:00:00Z whole\n2026-12-06T10:00:01Z par"), iotest.ErrReader(cut)))
	var got []string
	err := readLogLines(r, func(e backend.LogEntry) bool { got = append(got, string(e.Line)); return true })
	if !errors.Is(err, cut) || !slices.Equal(got, []string{"whole"}) {
		t.Errorf("got %q, %v; want [whole] and the cut", got, err)
	}
}

// TestMayMatch: the quick filter of List never drops a pod whose Zoe labels
// match (a value Kubernetes refuses is only in the annotation, and
// zoe.pod is the plugin's own label, not Zoe's).
func TestMayMatch(t *testing.T) {
	rt := testRuntime()
	spec := okSpec()
	pod, err := rt.podFor(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"zoe.execution": "7"}, true},
		{map[string]string{"zoe.execution": "8"}, false},
		{map[string]string{"zoe.owner": "alice@example.org"}, true}, // not a label value: the annotation decides
		{map[string]string{"zoe.pod": "other"}, true},               // Zoe's zoe.pod, not the plugin's
		{map[string]string{"zoe.deployment": "dev", "zoe.execution": "7"}, true},
	} {
		opts := backend.ListOptions{Labels: c.labels}
		full := opts.Matches(zoeLabels(pod.ObjectMeta))
		if full != c.want {
			t.Fatalf("%v: Matches = %v, want %v (the test's premise)", c.labels, full, c.want)
		}
		if got := mayMatch(opts, pod); full && !got {
			t.Errorf("%v: mayMatch = false for a matching pod", c.labels)
		}
	}
	if mayMatch(backend.ListOptions{Labels: map[string]string{"zoe.execution": "8"}}, pod) {
		t.Error("mayMatch kept a pod of another execution")
	}
}

// TestKeptPolicy: a pod stored without supplementalGroupsPolicy: Strict
// (a cluster before 1.33 drops the field) is refused, as not supported.
func TestKeptPolicy(t *testing.T) {
	merge := corev1.SupplementalGroupsPolicyMerge
	strict := corev1.SupplementalGroupsPolicyStrict
	for _, c := range []struct {
		name string
		sc   *corev1.PodSecurityContext
		ok   bool
	}{
		{"no security context", nil, false},
		{"the policy dropped", &corev1.PodSecurityContext{}, false},
		{"merge", &corev1.PodSecurityContext{SupplementalGroupsPolicy: &merge}, false},
		{"strict", &corev1.PodSecurityContext{SupplementalGroupsPolicy: &strict}, true},
	} {
		err := keptPolicy(&corev1.Pod{Spec: corev1.PodSpec{SecurityContext: c.sc}})
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, sdk.ErrUnsupported)) {
			t.Errorf("%s: %v, want refused (not supported): %v", c.name, err, !c.ok)
		}
	}
}
