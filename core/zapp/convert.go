package zapp

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ConvertV2 converts a description in the original's format 2 (Zoe 0.9.7
// to 2017.04), or its predecessor format 1, to format 3. The warnings say
// what could not be carried over exactly (priority, volume container paths,
// networks, ...) and, last, any rule the result still breaks. The error,
// Problems, is for JSON that is malformed or not a format-1/2 description.
func ConvertV2(data []byte) (*App, []string, error) {
	root, serr := parseTree(data)
	if serr != nil {
		line, col := lineCol(data, serr.off)
		return nil, nil, Problems{{Message: fmt.Sprintf("line %d, column %d: %s", line, col, serr.msg)}}
	}
	c := &converter{d: decoder{bad: map[string]bool{}}}
	a := c.app(root)
	if len(c.d.probs) > 0 {
		sortByDocument(c.d.probs, root)
		return nil, nil, c.d.probs
	}
	for _, p := range Validate(a, Limits{}) {
		c.warns = append(c.warns, "the result breaks a format-3 rule, fix it by hand: "+p.String())
	}
	return a, c.warns, nil
}

type converter struct {
	d     decoder
	warns []string
}

func (c *converter) warn(p, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p != "" {
		msg = p + ": " + msg
	}
	c.warns = append(c.warns, msg)
}

// known warns about the keys the converter does not know.
func (c *converter) known(o object, keys ...string) {
	for _, m := range o.members {
		if !contains(keys, m.key) {
			c.warn(keyPath(o.path, m.key), "unknown key, dropped")
		}
	}
}

func (c *converter) app(root *node) *App {
	d := &c.d
	if root.kind != kObject {
		d.fail("", "a ZApp description is a JSON object, got "+root.describe())
		return nil
	}
	o := object{members: root.members}
	version, ok := d.intField(o.get("version"), "version")
	if o.get("version") == nil {
		d.fail("version", "is required")
	}
	if !ok {
		return nil
	}
	if version != 1 && version != 2 {
		d.fail("version", fmt.Sprintf("this is format version %d; only formats 1 and 2 are converted", version))
		return nil
	}
	for _, k := range []string{"name", "will_end", "services"} {
		if o.get(k) == nil {
			d.fail(k, "is required")
		}
	}
	c.known(o, "name", "version", "will_end", "priority", "requires_binary", "services", "disable_autorestart")
	a := &App{Version: Version}
	a.Name, _ = d.str(o.get("name"), "name")
	a.WillEnd, _ = d.boolean(o.get("will_end"), "will_end")
	if n := o.get("priority"); n != nil {
		if p, ok := d.integer(n, "priority", 64, "an integer"); ok {
			a.Size = p
			c.warn("priority", "format 3 has no priority; it became size %d, the SIZE scheduling hint, "+
				"as the original did for old executions", p)
		}
	}
	if b, ok := d.boolean(o.get("requires_binary"), "requires_binary"); ok && b {
		c.warn("requires_binary", "dropped: format 3 has no binaries to upload")
	}
	if n := o.get("disable_autorestart"); n != nil {
		c.warn("disable_autorestart", "dropped: Zoe does not restart the services of format 3")
	}
	if elems, ok := d.array(o.get("services"), "services"); ok {
		a.Services = make([]Service, len(elems))
		for i, e := range elems {
			c.service(e, indexPath("services", i), version, &a.Services[i])
		}
	}
	return a
}

func (c *converter) service(n *node, p string, version int, s *Service) {
	d := &c.d
	if n.kind != kObject {
		d.wrongType(p, "an object", n)
		return
	}
	o := object{path: p, members: n.members}
	kp := func(k string) string { return keyPath(p, k) }
	c.known(o, "name", "docker_image", "monitor", "ports", "required_resources", "total_count",
		"essential_count", "startup_order", "environment", "volumes", "networks", "constraints", "command")
	required := []string{"name", "docker_image", "monitor", "ports", "required_resources"}
	if version == 2 {
		required = append(required, "total_count", "essential_count", "startup_order")
	}
	for _, k := range required {
		if o.get(k) == nil {
			d.fail(kp(k), "is required")
		}
	}
	s.Name, _ = d.str(o.get("name"), kp("name"))
	s.Image, _ = d.str(o.get("docker_image"), kp("docker_image"))
	s.Monitor, _ = d.boolean(o.get("monitor"), kp("monitor"))
	s.EssentialCount, s.TotalCount = 1, 1
	if version == 1 {
		c.warn(p, "format 1 has no instance counts: the service has essential_count 1, total_count 1 and startup_order 0")
	} else {
		s.TotalCount, _ = d.intField(o.get("total_count"), kp("total_count"))
		s.EssentialCount, _ = d.intField(o.get("essential_count"), kp("essential_count"))
		s.StartupOrder, _ = d.intField(o.get("startup_order"), kp("startup_order"))
	}
	if r := o.get("required_resources"); r != nil && r.kind == kObject {
		ro := object{path: kp("required_resources"), members: r.members}
		c.known(ro, "memory", "cores")
		if ro.get("memory") == nil {
			d.fail(keyPath(ro.path, "memory"), "is required")
		}
		s.Resources.Memory.Min, _ = d.int64OrNull(ro.get("memory"), keyPath(ro.path, "memory"))
		s.Resources.Cores.Min, _ = d.floatOrNull(ro.get("cores"), keyPath(ro.path, "cores"))
	} else if r != nil {
		d.wrongType(kp("required_resources"), "an object", r)
	}
	s.Ports = []Port{}
	if elems, ok := d.array(o.get("ports"), kp("ports")); ok {
		for j, e := range elems {
			if port, ok := c.port(e, indexPath(kp("ports"), j)); ok {
				s.Ports = append(s.Ports, port)
			}
		}
	}
	s.Environment = []EnvVar{}
	if n := o.get("environment"); n != nil {
		elems, _ := d.array(n, kp("environment"))
		s.Environment = make([]EnvVar, len(elems))
		for j, e := range elems {
			d.envVar(e, indexPath(kp("environment"), j), &s.Environment[j])
		}
	}
	s.Volumes = []Volume{}
	if n := o.get("volumes"); n != nil {
		elems, _ := d.array(n, kp("volumes"))
		for j, e := range elems {
			if v, ok := c.volume(e, indexPath(kp("volumes"), j), s.Volumes); ok {
				s.Volumes = append(s.Volumes, v)
			}
		}
	}
	if n := o.get("networks"); n != nil && !(n.kind == kArray && len(n.elems) == 0) {
		c.warn(kp("networks"), "dropped: Zoe gives each execution its own network")
	}
	if n := o.get("constraints"); n != nil && !(n.kind == kArray && len(n.elems) == 0) {
		c.warn(kp("constraints"), "dropped: format 3 places services by node labels; add \"labels\" by hand if needed")
	}
	if n := o.get("command"); n != nil {
		s.Command, _ = d.strOrNull(n, kp("command"))
		if s.Command != nil && *s.Command == "" {
			s.Command = nil
		}
	}
}

func (c *converter) port(n *node, p string) (Port, bool) {
	d := &c.d
	if n.kind != kObject {
		d.wrongType(p, "an object", n)
		return Port{}, false
	}
	o := object{path: p, members: n.members}
	c.known(o, "name", "protocol", "port_number", "is_main_endpoint", "path", "expose")
	for _, k := range []string{"name", "protocol", "port_number"} {
		if o.get(k) == nil {
			d.fail(keyPath(p, k), "is required")
		}
	}
	var port Port
	port.Name, _ = d.str(o.get("name"), keyPath(p, "name"))
	port.PortNumber, _ = d.intField(o.get("port_number"), keyPath(p, "port_number"))
	proto, _ := d.str(o.get("protocol"), keyPath(p, "protocol"))
	urlPath, _ := d.str(o.get("path"), keyPath(p, "path"))
	switch strings.ToLower(proto) {
	case "http", "https":
		port.Protocol = "tcp"
		port.URLTemplate = strings.ToLower(proto) + "://{ip_port}" + braceEscape(urlPath)
	case "tcp", "udp":
		port.Protocol = strings.ToLower(proto)
		if urlPath != "" {
			c.warn(keyPath(p, "path"), "dropped: a %s port has no URL", proto)
		}
	default:
		port.Protocol = "tcp"
		c.warn(keyPath(p, "protocol"), "%q became tcp", proto)
	}
	if b, ok := d.boolean(o.get("is_main_endpoint"), keyPath(p, "is_main_endpoint")); ok && b {
		c.warn(keyPath(p, "is_main_endpoint"), "dropped: format 3 has no main endpoint")
	}
	if o.get("expose") != nil {
		c.warn(keyPath(p, "expose"), "dropped: format 3 publishes every port; set \"proxy\" to reach it through Zoe's proxy")
	}
	return port, true
}

// braceEscape keeps a literal path literal in a url_template.
func braceEscape(s string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
}

// volume converts a [host path, container path, read-only] triple; format
// 3 mounts volumes at /mnt/<name>, so the name comes from the container
// path and the container path itself is lost unless it was /mnt/<name>.
func (c *converter) volume(n *node, p string, prev []Volume) (Volume, bool) {
	d := &c.d
	if n.kind != kArray || len(n.elems) != 3 {
		d.wrongType(p, "a [host path, container path, read-only] triple", n)
		return Volume{}, false
	}
	host, ok1 := d.str(n.elems[0], indexPath(p, 0))
	target, ok2 := d.str(n.elems[1], indexPath(p, 1))
	ro, ok3 := d.boolean(n.elems[2], indexPath(p, 2))
	if !ok1 || !ok2 || !ok3 {
		return Volume{}, false
	}
	name := volumeName(target)
	base := name
	for i := 2; slices.ContainsFunc(prev, func(v Volume) bool { return v.Name == name }); i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	if path.Clean(target) != "/mnt/"+name {
		c.warn(p, "mounted at /mnt/%s instead of %s: format 3 mounts volumes at /mnt/<name>", name, target)
	}
	return Volume{Name: name, Path: host, ReadOnly: ro}, true
}

// volumeName derives a safe single path element from a container path.
func volumeName(target string) string {
	base := path.Base(path.Clean("/" + target))
	var b strings.Builder
	for _, r := range base {
		if r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	switch name {
	case "", "_", ".", "..":
		return "volume"
	case "workspace":
		return "workspace-data" // Zoe's own mount
	}
	return name
}
