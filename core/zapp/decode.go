package zapp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Decode reads a description strictly: malformed JSON, a value of the wrong
// type, a missing required key, an unknown or repeated key, null where it
// is not allowed and a version other than 3 are each a Problem, all
// reported at once; the error is then Problems and the App nil. Decode does
// not apply the semantic rules: Load does, or Validate.
//
// Integers are JSON numbers written as integers: 2.0 and 2e3 are refused,
// as the original's JSON-Schema (draft 4) refused them.
func Decode(data []byte) (*App, error) {
	r := decode(data)
	if len(r.probs) > 0 {
		return nil, r.probs
	}
	return r.app, nil
}

// Load decodes a description and validates it against the limits,
// reporting the structural and the semantic problems together, in document
// order; the error is then Problems. Semantic rules that depend on a value
// that could not be decoded are skipped rather than reported twice.
func Load(data []byte, l Limits) (*App, error) {
	r := decode(data)
	if r.app == nil || r.refused {
		return nil, r.probs
	}
	v := validator{limits: l, bad: r.bad}
	v.app(r.app)
	probs := append(r.probs, v.probs...)
	if len(probs) > 0 {
		sortByDocument(probs, r.root)
		return nil, probs
	}
	return r.app, nil
}

type decodeResult struct {
	root  *node
	app   *App // best effort when probs is not empty; nil when nothing could be read
	probs Problems
	// bad holds the paths whose value is missing or could not be decoded.
	bad map[string]bool
	// refused is set for a syntax error or another format version, where
	// nothing else is worth reporting.
	refused bool
}

func decode(data []byte) decodeResult {
	root, serr := parseTree(data)
	if serr != nil {
		line, col := lineCol(data, serr.off)
		return decodeResult{refused: true, probs: Problems{{
			Message: fmt.Sprintf("line %d, column %d: %s", line, col, serr.msg),
		}}}
	}
	d := &decoder{bad: map[string]bool{}}
	res := decodeResult{root: root, bad: d.bad}
	if root.kind != kObject {
		res.refused = true
		res.probs = Problems{{Message: "a ZApp description is a JSON object, got " + root.describe()}}
		return res
	}
	if p, ok := refuseFormat(root); ok {
		res.refused = true
		res.probs = Problems{p}
		return res
	}
	res.app = d.app(root)
	sortByDocument(d.probs, root)
	res.probs = d.probs
	return res
}

// refuseFormat recognises the older formats, whose descriptions would
// otherwise drown in unknown keys.
func refuseFormat(root *node) (Problem, bool) {
	var version, processes, services *node
	for _, m := range root.members {
		switch m.key {
		case "version":
			version = m.val
		case "processes":
			processes = m.val
		case "services":
			services = m.val
		}
	}
	if processes != nil && services == nil {
		return Problem{Message: `this is a description in the "processes" format of Zoe 0.8 and 0.9; ` +
			`Zoe runs only format version 3, which describes "services" with an image, resources and ` +
			`instance counts: rewrite it by hand`}, true
	}
	if version == nil || version.kind != kNumber {
		return Problem{}, false
	}
	n, err := strconv.ParseInt(version.text, 10, 64)
	if err != nil || n == Version {
		return Problem{}, false
	}
	switch n {
	case 2:
		return Problem{Path: "version", Message: "this is a format-2 description (Zoe 0.9.7 to 2017.04); " +
			"Zoe runs only format version 3, which renamed docker_image to image, replaced " +
			"required_resources {memory} with resources {memory {min, max}, cores {min, max}} and volumes " +
			"[host path, container path, read-only] with {name, path, read_only} mounted at /mnt/<name>, " +
			"and dropped priority, requires_binary, networks and constraints: " +
			"convert it with \"zoe zapp convert FILE\""}, true
	case 1:
		return Problem{Path: "version", Message: "this is a format-1 description (Zoe 2016); " +
			"Zoe runs only format version 3: format 1 has no essential_count, total_count or " +
			"startup_order and uses the format-2 names (docker_image, required_resources, volumes as " +
			"arrays): convert it with \"zoe zapp convert FILE\""}, true
	}
	return Problem{Path: "version", Message: fmt.Sprintf(
		"unsupported format version %d: Zoe runs only format version 3", n)}, true
}

type decoder struct {
	probs Problems
	bad   map[string]bool
}

func (d *decoder) fail(path, msg string) {
	d.probs = append(d.probs, Problem{path, msg})
	d.bad[path] = true
}

func (d *decoder) wrongType(path, want string, n *node) {
	d.fail(path, "must be "+want+", got "+n.describe())
}

// object is a decoded JSON object: its values by key.
type object struct {
	path    string
	members []member
}

// get returns the value of key, nil when it is absent.
func (o object) get(key string) *node {
	for _, m := range o.members {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

// object checks that n is an object with no unknown or repeated key and
// every required one; ok is false when n is not an object.
func (d *decoder) object(n *node, path string, known, required []string) (object, bool) {
	if n.kind != kObject {
		d.wrongType(path, "an object", n)
		return object{}, false
	}
	for i, m := range n.members {
		kp := keyPath(path, m.key)
		if !contains(known, m.key) {
			d.fail(kp, unknownKey(m.key, known))
			continue
		}
		for _, prev := range n.members[:i] {
			if prev.key == m.key {
				d.fail(kp, "repeated key: a key appears at most once in an object")
				break
			}
		}
	}
	o := object{path: path, members: n.members}
	for _, k := range required {
		if o.get(k) == nil {
			d.fail(keyPath(path, k), "is required")
		}
	}
	return o, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unknownKey explains an unknown key with the likely intended one, or the
// list of the known ones.
func unknownKey(key string, known []string) string {
	// The format-2 names, which people upgrading by hand keep.
	renames := [][2]string{{"docker_image", "image"}, {"required_resources", "resources"},
		{"networks", "network"}, {"constraints", "labels"}, {"shm_size", "shm"}}
	for _, r := range renames {
		if key == r[0] && contains(known, r[1]) {
			return fmt.Sprintf("unknown key; did you mean %q? (%s is the name of an older format)", r[1], r[0])
		}
	}
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		dist := levenshtein(strings.ToLower(key), k)
		if len(key) >= 3 && (strings.HasPrefix(k, strings.ToLower(key)) || strings.HasPrefix(strings.ToLower(key), k)) {
			dist = min(dist, 2)
		}
		if dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if bestDist <= 2 && bestDist < len(key) {
		return fmt.Sprintf("unknown key; did you mean %q?", best)
	}
	return "unknown key; the known keys are " + strings.Join(known, ", ")
}

// levenshtein is the edit distance between a and b, in bytes; keys are
// short, and a long one simply gets no suggestion.
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Scalars. Each returns ok false, after reporting, when the value has the
// wrong type; an absent value (nil) is not reported here.

func (d *decoder) str(n *node, path string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.kind != kString {
		d.wrongType(path, "a string", n)
		return "", false
	}
	return n.text, true
}

func (d *decoder) strOrNull(n *node, path string) (*string, bool) {
	if n == nil || n.kind == kNull {
		return nil, n != nil
	}
	if n.kind != kString {
		d.wrongType(path, "a string or null", n)
		return nil, false
	}
	s := n.text
	return &s, true
}

func (d *decoder) boolean(n *node, path string) (bool, bool) {
	if n == nil {
		return false, false
	}
	if n.kind != kBool {
		d.wrongType(path, "true or false", n)
		return false, false
	}
	return n.b, true
}

// integer reads an integer that fits in bits; want names it in messages.
func (d *decoder) integer(n *node, path string, bits int, want string) (int64, bool) {
	if n == nil {
		return 0, false
	}
	if n.kind != kNumber || strings.ContainsAny(n.text, ".eE") {
		d.wrongType(path, want, n)
		return 0, false
	}
	i, err := strconv.ParseInt(n.text, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		d.fail(path, fmt.Sprintf("is out of range: %s is not a %d-bit integer", short(n.text), bits))
		return 0, false
	}
	if err != nil {
		d.wrongType(path, want, n)
		return 0, false
	}
	return i, true
}

func (d *decoder) intField(n *node, path string) (int, bool) {
	i, ok := d.integer(n, path, strconv.IntSize, "an integer")
	return int(i), ok
}

func (d *decoder) int64OrNull(n *node, path string) (*int64, bool) {
	if n == nil || n.kind == kNull {
		return nil, n != nil
	}
	i, ok := d.integer(n, path, 64, "an integer or null")
	if !ok {
		return nil, false
	}
	return &i, true
}

func (d *decoder) floatOrNull(n *node, path string) (*float64, bool) {
	if n == nil || n.kind == kNull {
		return nil, n != nil
	}
	if n.kind != kNumber {
		d.wrongType(path, "a number or null", n)
		return nil, false
	}
	f, err := strconv.ParseFloat(n.text, 64)
	if err != nil || math.IsInf(f, 0) {
		d.fail(path, "is out of range: "+short(n.text))
		return nil, false
	}
	return &f, true
}

// array checks that n is an array; a missing array is reported by object.
func (d *decoder) array(n *node, path string) ([]*node, bool) {
	if n == nil {
		return nil, false
	}
	if n.kind != kArray {
		d.wrongType(path, "an array", n)
		return nil, false
	}
	return n.elems, true
}

// The format --------------------------------------------------------------

func (d *decoder) app(root *node) *App {
	o, _ := d.object(root, "",
		[]string{"name", "version", "will_end", "size", "services"},
		[]string{"name", "version", "will_end", "size", "services"})
	a := &App{}
	a.Name, _ = d.str(o.get("name"), "name")
	if v, ok := d.intField(o.get("version"), "version"); ok {
		a.Version = v
	}
	a.WillEnd, _ = d.boolean(o.get("will_end"), "will_end")
	a.Size, _ = d.integer(o.get("size"), "size", 64, "an integer")
	if elems, ok := d.array(o.get("services"), "services"); ok {
		a.Services = make([]Service, len(elems))
		for i, e := range elems {
			d.service(e, indexPath("services", i), &a.Services[i])
		}
	}
	return a
}

func (d *decoder) service(n *node, path string, s *Service) {
	o, ok := d.object(n, path,
		[]string{"name", "image", "monitor", "startup_order", "essential_count", "total_count", "replicas",
			"resources", "ports", "environment", "volumes", "command", "work_dir", "labels", "network"},
		[]string{"name", "image", "monitor", "startup_order", "essential_count", "total_count",
			"resources", "ports", "environment", "volumes", "command"})
	if !ok {
		return
	}
	p := func(k string) string { return keyPath(path, k) }
	s.Name, _ = d.str(o.get("name"), p("name"))
	s.Image, _ = d.str(o.get("image"), p("image"))
	s.Monitor, _ = d.boolean(o.get("monitor"), p("monitor"))
	s.StartupOrder, _ = d.intField(o.get("startup_order"), p("startup_order"))
	s.EssentialCount, _ = d.intField(o.get("essential_count"), p("essential_count"))
	s.TotalCount, _ = d.intField(o.get("total_count"), p("total_count"))
	if r := o.get("replicas"); r != nil {
		if i, ok := d.intField(r, p("replicas")); ok {
			s.Replicas = &i
		}
	}
	if r := o.get("resources"); r != nil {
		d.resources(r, p("resources"), &s.Resources)
	}
	if elems, ok := d.array(o.get("ports"), p("ports")); ok {
		s.Ports = make([]Port, len(elems))
		for i, e := range elems {
			d.port(e, indexPath(p("ports"), i), &s.Ports[i])
		}
	}
	if elems, ok := d.array(o.get("environment"), p("environment")); ok {
		s.Environment = make([]EnvVar, len(elems))
		for i, e := range elems {
			d.envVar(e, indexPath(p("environment"), i), &s.Environment[i])
		}
	}
	if elems, ok := d.array(o.get("volumes"), p("volumes")); ok {
		s.Volumes = make([]Volume, len(elems))
		for i, e := range elems {
			d.volume(e, indexPath(p("volumes"), i), &s.Volumes[i])
		}
	}
	s.Command, _ = d.strOrNull(o.get("command"), p("command"))
	// An empty work_dir or network would read back as absent: refuse it
	// here, where the key is still visible.
	s.WorkDir, _ = d.nonEmpty(o.get("work_dir"), p("work_dir"))
	// Empty labels decode as nil, as the field is omitted when empty.
	if elems, ok := d.array(o.get("labels"), p("labels")); ok && len(elems) > 0 {
		s.Labels = make([]string, len(elems))
		for i, e := range elems {
			s.Labels[i], _ = d.str(e, indexPath(p("labels"), i))
		}
	}
	s.Network, _ = d.nonEmpty(o.get("network"), p("network"))
}

func (d *decoder) nonEmpty(n *node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && s == "" {
		d.fail(path, "must not be empty; leave the key out instead")
		return "", false
	}
	return s, ok
}

func (d *decoder) resources(n *node, path string, r *Resources) {
	o, ok := d.object(n, path, []string{"memory", "cores", "shm"}, []string{"memory", "cores"})
	if !ok {
		return
	}
	minmax := []string{"min", "max"}
	if m := o.get("memory"); m != nil {
		mp := keyPath(path, "memory")
		if mo, ok := d.object(m, mp, minmax, minmax); ok {
			r.Memory.Min, _ = d.int64OrNull(mo.get("min"), keyPath(mp, "min"))
			r.Memory.Max, _ = d.int64OrNull(mo.get("max"), keyPath(mp, "max"))
		}
	}
	if c := o.get("cores"); c != nil {
		cp := keyPath(path, "cores")
		if co, ok := d.object(c, cp, minmax, minmax); ok {
			r.Cores.Min, _ = d.floatOrNull(co.get("min"), keyPath(cp, "min"))
			r.Cores.Max, _ = d.floatOrNull(co.get("max"), keyPath(cp, "max"))
		}
	}
	if s := o.get("shm"); s != nil {
		if i, ok := d.integer(s, keyPath(path, "shm"), 64, "an integer"); ok {
			r.Shm = &i
		}
	}
}

func (d *decoder) port(n *node, path string, p *Port) {
	o, ok := d.object(n, path, []string{"name", "port_number", "protocol", "url_template", "proxy"},
		[]string{"name", "port_number", "protocol", "url_template"})
	if !ok {
		return
	}
	p.Name, _ = d.str(o.get("name"), keyPath(path, "name"))
	p.PortNumber, _ = d.intField(o.get("port_number"), keyPath(path, "port_number"))
	p.Protocol, _ = d.str(o.get("protocol"), keyPath(path, "protocol"))
	p.URLTemplate, _ = d.str(o.get("url_template"), keyPath(path, "url_template"))
	p.Proxy, _ = d.boolean(o.get("proxy"), keyPath(path, "proxy"))
}

func (d *decoder) envVar(n *node, path string, e *EnvVar) {
	if n.kind != kArray || len(n.elems) != 2 {
		d.wrongType(path, "a [name, value] pair of strings", n)
		return
	}
	e.Name, _ = d.str(n.elems[0], indexPath(path, 0))
	e.Value, _ = d.str(n.elems[1], indexPath(path, 1))
}

func (d *decoder) volume(n *node, path string, v *Volume) {
	keys := []string{"name", "path", "read_only"}
	o, ok := d.object(n, path, keys, keys)
	if !ok {
		return
	}
	v.Name, _ = d.str(o.get("name"), keyPath(path, "name"))
	v.Path, _ = d.str(o.get("path"), keyPath(path, "path"))
	v.ReadOnly, _ = d.boolean(o.get("read_only"), keyPath(path, "read_only"))
}
