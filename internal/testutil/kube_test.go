package testutil

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// One control plane for the Kubernetes tests of this package; TestMain
// stops it.
var kube = NewKube()

type kubePod struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
		ContainerStatuses []struct {
			State struct {
				Terminated *struct {
					ExitCode int    `json:"exitCode"`
					Reason   string `json:"reason"`
				} `json:"terminated"`
			} `json:"state"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func podSpec(name string, labels, annotations map[string]string, nodeSelector map[string]string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{"name": name, "labels": labels, "annotations": annotations},
		"spec": map[string]any{
			"restartPolicy": "Never",
			"nodeSelector":  nodeSelector,
			"containers": []any{map[string]any{
				"name": "main", "image": "zoe/none:1",
				"resources": map[string]any{"requests": map[string]string{"cpu": "1", "memory": "1Gi"},
					"limits": map[string]string{"memory": "1Gi"}},
			}},
		},
	}
}

func getPod(t *testing.T, c *KubeCluster, ns, name string) kubePod {
	t.Helper()
	var p kubePod
	c.MustDo(t, "GET", "/api/v1/namespaces/"+ns+"/pods/"+name, nil, &p)
	return p
}

func waitPhase(t *testing.T, c *KubeCluster, ns, name, phase string) kubePod {
	t.Helper()
	var p kubePod
	WaitFor(t, 30*time.Second, "pod "+name+" "+phase, func() (bool, string) {
		p = getPod(t, c, ns, name)
		return p.Status.Phase == phase, fmt.Sprintf("%+v", p)
	})
	return p
}

// watchPods watches the pods of ns from resourceVersion rv, sending each
// event as its type, the pod's name and phase ("MODIFIED web Running"), or
// for an ERROR its object; the channel closes when the watch ends.
func watchPods(t *testing.T, c *KubeCluster, ctx context.Context, ns, rv string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET",
		c.Server+"/api/v1/namespaces/"+ns+"/pods?watch=1&resourceVersion="+rv, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %s", resp.Status)
	}
	events := make(chan string, 100)
	go func() {
		defer close(events)
		defer func() { _ = resp.Body.Close() }()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var ev struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}
			if dec.Decode(&ev) != nil {
				return
			}
			var p kubePod
			if ev.Type == "ERROR" || json.Unmarshal(ev.Object, &p) != nil {
				events <- ev.Type + " " + string(ev.Object)
				continue
			}
			events <- ev.Type + " " + p.Metadata.Name + " " + p.Status.Phase
		}
	}()
	return events
}

// followLog reads a log with follow, sending its lines.
func followLog(t *testing.T, c *KubeCluster, ctx context.Context, path string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", c.Server+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow %s: %s", path, resp.Status)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		defer func() { _ = resp.Body.Close() }()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// nextEvent returns the next event, or "" when the watch ended.
func nextEvent(t *testing.T, events <-chan string) string {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event after 30s")
		return ""
	}
}

// waitEvent reads events until one has the prefix want.
func waitEvent(t *testing.T, events <-chan string, want string) {
	t.Helper()
	for {
		ev := nextEvent(t, events)
		if ev == "" {
			t.Fatalf("the watch ended before %q", want)
		}
		if strings.HasPrefix(ev, want) {
			return
		}
	}
}

func TestKube(t *testing.T) {
	start := time.Now()
	c := kube.Cluster(t)
	t.Logf("control plane ready in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	c.AddNode(t, "n1", 4, "8Gi", nil)
	c.AddNode(t, "n2", 2, "4Gi", map[string]string{"zone": "b"})
	// kwok's node-not-ready stage: a node with this label becomes NotReady
	// 1 to 2 s later (then tainted by the node lifecycle controller, so a
	// node of its own).
	c.AddNode(t, "n3", 1, "1Gi", nil)
	t.Logf("3 nodes Ready in %s", time.Since(start).Round(time.Millisecond))
	c.MustDo(t, "PATCH", "/api/v1/nodes/n3", map[string]any{"metadata": map[string]any{
		"labels": map[string]string{"node-not-ready.stage.kwok.x-k8s.io": "true"}}}, nil)
	ns := c.Namespace(t)
	pods := "/api/v1/namespaces/" + ns + "/pods"
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	c.MustDo(t, "GET", pods, nil, &list)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := watchPods(t, c, ctx, ns, list.Metadata.ResourceVersion)

	// The log kwok serves for web's container, through the API server.
	webLog := c.PodLog(t, ns, "web")
	base := time.Now().Truncate(time.Second).Add(-10 * time.Second)
	for i, line := range []string{"one", "two", "three"} {
		webLog.Add(t, base.Add(time.Duration(i)*time.Second), "stdout", line)
	}

	start = time.Now()
	// Scheduled by kube-scheduler on a node with room for its requests,
	// Running by kwok's pod-ready stage.
	c.MustDo(t, "POST", pods, podSpec("web", nil, nil, map[string]string{"zone": "b"}), nil)
	// Ends at once by Zoe's stage (kube_stages.yaml): the annotation at
	// creation, or added later by ExitPod.
	c.MustDo(t, "POST", pods, podSpec("ok", nil, map[string]string{KubeExitCodeAnnotation: "0"}, nil), nil)
	c.MustDo(t, "POST", pods, podSpec("oom", nil, nil, nil), nil)
	// kwok's pod-container-running-failed stage: a pod with this label
	// fails 1 to 2 s after it runs, with the exit code of an annotation.
	c.MustDo(t, "POST", pods, podSpec("chaos", map[string]string{"pod-container-running-failed.stage.kwok.x-k8s.io": "true"},
		map[string]string{"pod-container-running-failed.stage.kwok.x-k8s.io/exit-code": "7"}, nil), nil)
	// kwok's pod-complete stage ends the Running pods owned by a Job
	// (selector: .metadata.ownerReferences.[].kind In [Job]): they are
	// Succeeded, exit code 0, at once.
	c.MustDo(t, "POST", "/apis/batch/v1/namespaces/"+ns+"/jobs", map[string]any{
		"metadata": map[string]any{"name": "batch"},
		"spec":     map[string]any{"backoffLimit": 0, "template": map[string]any{"spec": podSpec("", nil, nil, nil)["spec"]}},
	}, nil)

	web := waitPhase(t, c, ns, "web", "Running")
	if web.Spec.NodeName != "n2" || web.Status.PodIP == "" {
		t.Errorf("web runs on %q with IP %q, want n2 and an IP", web.Spec.NodeName, web.Status.PodIP)
	}
	t.Logf("a pod Running in %s", time.Since(start).Round(time.Millisecond))
	// kwok learns of the Logs object by a watch of its own: on a loaded
	// machine the pod may run first.
	WaitFor(t, time.Minute, "kwok serving web's log", func() (bool, string) {
		b, code := c.Do(t, "GET", pods+"/web/log", nil)
		return code == http.StatusOK, fmt.Sprint(code, " ", string(b))
	})
	for query, want := range map[string]string{
		"":             "one\ntwo\nthree\n",
		"?tailLines=1": "three\n",
		"?sinceTime=" + base.Add(time.Second).UTC().Format(time.RFC3339): "two\nthree\n",
	} {
		if b, code := c.Do(t, "GET", pods+"/web/log"+query, nil); code != http.StatusOK || string(b) != want {
			t.Errorf("log%s: %d %q, want %q", query, code, b, want)
		}
	}
	follow := followLog(t, c, ctx, pods+"/web/log?follow=true&tailLines=1")
	if line := nextEvent(t, follow); line != "three" {
		t.Errorf("first line of the followed log: %q, want three", line)
	}
	webLog.Add(t, time.Now(), "stderr", "four")
	if line := nextEvent(t, follow); line != "four" {
		t.Errorf("line added to the followed log: %q, want four", line)
	}
	waitPhase(t, c, ns, "ok", "Succeeded")
	waitPhase(t, c, ns, "oom", "Running")
	c.ExitPod(t, ns, "oom", 137, "OOMKilled")
	p := waitPhase(t, c, ns, "oom", "Failed")
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil ||
		cs[0].State.Terminated.ExitCode != 137 || cs[0].State.Terminated.Reason != "OOMKilled" {
		t.Errorf("oom's container statuses: %+v", cs)
	}
	p = waitPhase(t, c, ns, "chaos", "Failed")
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 7 {
		t.Errorf("chaos's container statuses: %+v", cs)
	}
	WaitFor(t, 30*time.Second, "the Job complete", func() (bool, string) {
		var job struct {
			Status struct {
				Succeeded int `json:"succeeded"`
			} `json:"status"`
		}
		c.MustDo(t, "GET", "/apis/batch/v1/namespaces/"+ns+"/jobs/batch", nil, &job)
		return job.Status.Succeeded == 1, fmt.Sprintf("%+v", job)
	})
	WaitFor(t, 30*time.Second, "node n3 NotReady", func() (bool, string) {
		b, _ := c.Do(t, "GET", "/api/v1/nodes/n3", nil)
		return !conditionTrue(b, "Ready") && strings.Contains(string(b), `"type":"Ready"`), string(b)
	})
	waitEvent(t, events, "MODIFIED web Running")
	t.Logf("the pods ended in %s", time.Since(start).Round(time.Millisecond))

	// A service account has the rights RBAC gives it, no more.
	token, kubeconfig := c.ServiceAccount(t, ns, "reader")
	if b, err := os.ReadFile(kubeconfig); err != nil || !strings.Contains(string(b), token) {
		t.Errorf("kubeconfig of reader: %v %s", err, b)
	}
	asReader := func() int {
		req, _ := http.NewRequest("GET", c.Server+pods, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := asReader(); code != http.StatusForbidden {
		t.Errorf("reader lists pods without a role: %d", code)
	}
	c.MustDo(t, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/"+ns+"/rolebindings", map[string]any{
		"metadata": map[string]any{"name": "reader"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "reader", "namespace": ns}},
	}, nil)
	WaitFor(t, 10*time.Second, "reader allowed to list pods", func() (bool, string) {
		code := asReader()
		return code == http.StatusOK, fmt.Sprint(code)
	})

	// Cordoned, n2 takes no new pod: the scheduler says why.
	c.MustDo(t, "PATCH", "/api/v1/nodes/n2", map[string]any{"spec": map[string]any{"unschedulable": true}}, nil)
	// The scheduler hears of the cordon through its own watch: a pod made
	// at once may still be placed on n2 (a loaded run had it). The
	// controller manager's taint for it is written after the cordon, so
	// once the taint is there the scheduler's watch has brought the
	// cordon before it.
	WaitFor(t, 30*time.Second, "n2 tainted unschedulable", func() (bool, string) {
		var n struct {
			Spec struct {
				Taints []struct{ Key string } `json:"taints"`
			} `json:"spec"`
		}
		c.MustDo(t, "GET", "/api/v1/nodes/n2", nil, &n)
		for _, tn := range n.Spec.Taints {
			if tn.Key == "node.kubernetes.io/unschedulable" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("taints %+v", n.Spec.Taints)
	})
	c.MustDo(t, "POST", pods, podSpec("cordoned", nil, nil, map[string]string{"zone": "b"}), nil)
	WaitFor(t, 30*time.Second, "pod cordoned unschedulable", func() (bool, string) {
		p := getPod(t, c, ns, "cordoned")
		for _, cond := range p.Status.Conditions {
			if cond.Type == "PodScheduled" && cond.Status == "False" && cond.Reason == "Unschedulable" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p)
	})

	// The API server restarted (killed): the watch breaks. A watch from
	// the last resourceVersion seen either resumes (nothing missed) or is
	// refused as too old (the restarted server's watch cache starts at its
	// restart), and then a list gives the state and a new watch the rest:
	// what an informer does.
	c.MustDo(t, "GET", pods, nil, &list)
	start = time.Now()
	c.RestartAPIServer(t)
	t.Logf("kube-apiserver restarted in %s", time.Since(start).Round(time.Millisecond))
	for ev := nextEvent(t, events); ev != ""; ev = nextEvent(t, events) {
	}
	c.MustDo(t, "POST", pods, podSpec("after", nil, nil, nil), nil)
	events = watchPods(t, c, ctx, ns, list.Metadata.ResourceVersion)
	for {
		ev := nextEvent(t, events)
		if ev == "" {
			t.Fatal("the watch from before the restart ended")
		}
		if strings.HasPrefix(ev, "ADDED after ") {
			t.Log("a watch from before the restart resumed")
			break
		}
		if strings.HasPrefix(ev, "ERROR") {
			t.Logf("a watch from before the restart: %s", ev)
			var l struct {
				Metadata struct {
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
				Items []kubePod `json:"items"`
			}
			c.MustDo(t, "GET", pods, nil, &l)
			if !slices.ContainsFunc(l.Items, func(p kubePod) bool { return p.Metadata.Name == "after" }) {
				t.Fatalf("the list after the restart has no pod after: %+v", l.Items)
			}
			events = watchPods(t, c, ctx, ns, l.Metadata.ResourceVersion)
			break
		}
	}
	c.MustDo(t, "POST", pods, podSpec("after2", nil, nil, nil), nil)
	waitEvent(t, events, "ADDED after2")
	waitEvent(t, events, "MODIFIED after2 Running")
	waitPhase(t, c, ns, "after", "Running")
}
