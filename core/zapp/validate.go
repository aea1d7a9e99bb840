package zapp

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zoe-project/zoe/internal/safetext"
)

// Validate applies the semantic rules of the format to a, with l the
// per-service administrative limits, and returns every problem (nil when
// there is none), in the documented order of the fields. It never changes
// a: unlike the original, a resource above a limit is an error, not
// silently capped.
func Validate(a *App, l Limits) Problems {
	v := validator{limits: l}
	v.app(a)
	sortCanonical(v.probs)
	return v.probs
}

type validator struct {
	limits Limits
	probs  Problems
	// bad holds paths that could not be decoded (Load only): rules about
	// them are skipped, as the decoder reported them already.
	bad map[string]bool
}

func (v *validator) add(path, msg string) { v.probs = append(v.probs, Problem{path, msg}) }

// ok tells whether the value at path and its parents were decoded.
func (v *validator) ok(p string) bool {
	if len(v.bad) == 0 {
		return true
	}
	for {
		if v.bad[p] {
			return false
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return true
		}
		p = p[:i]
	}
}

// svc builds the paths of one service lazily: most services have no
// problem, and building every path would dominate validation's cost.
type svc struct {
	v *validator
	i int
}

func (s svc) path(rest string) string {
	p := "services[" + strconv.Itoa(s.i) + "]"
	if rest == "" || rest[0] == '[' {
		return p + rest
	}
	return p + "." + rest
}

func (s svc) elem(list string, j int, rest string) string {
	return s.path(list + "[" + strconv.Itoa(j) + "]" + rest)
}

func (s svc) ok(rest string) bool { return len(s.v.bad) == 0 || s.v.ok(s.path(rest)) }

func (s svc) okElem(list string, j int, rest string) bool {
	return len(s.v.bad) == 0 || s.v.ok(s.elem(list, j, rest))
}

func (s svc) add(rest, msg string) { s.v.add(s.path(rest), msg) }

func (v *validator) app(a *App) {
	if a == nil {
		v.add("", "no description")
		return
	}
	if msg := checkName(a.Name, 3, 128, "letters, digits, '-' and '@'", isAppNameChar); msg != "" && v.ok("name") {
		v.add("name", msg)
	}
	if v.ok("version") && a.Version != Version {
		v.add("version", fmt.Sprintf("must be %d, got %d", Version, a.Version))
	}
	if v.ok("size") && a.Size < 0 {
		v.add("size", fmt.Sprintf("must be at least 0, got %d", a.Size))
	}
	if !v.ok("services") {
		return
	}
	if len(a.Services) == 0 {
		v.add("services", "must hold at least one service")
		return
	}
	monitor, monitorKnown, instances, stored := false, true, 0, int64(0)
	for i := range a.Services {
		s := &a.Services[i]
		sv := svc{v, i}
		v.service(sv, s)
		monitor = monitor || s.Monitor
		monitorKnown = monitorKnown && sv.ok("monitor")
		if sv.ok("total_count") && s.TotalCount > 0 {
			instances += min(s.TotalCount, math.MaxInt-instances) // saturates
			if instances <= MaxInstances {
				stored += serviceSize(s) * int64(s.TotalCount) // at most 1000 descriptions: no overflow
			}
		}
	}
	if !monitor && monitorKnown {
		v.add("services", "no service has monitor set to true; at least one must")
	}
	if instances > MaxInstances {
		v.add("services", fmt.Sprintf("the ZApp creates %d service instances, more than the %d allowed", instances, MaxInstances))
	} else if stored > MaxStored {
		v.add("services", fmt.Sprintf("the ZApp's %d service instances would take %s stored (each a copy of its service's "+
			"description, environment and labels included), more than the %s allowed: fewer instances or smaller services",
			instances, formatBytes(stored), formatBytes(MaxStored)))
	}
	namesKnown := v.serviceNames(a.Services)
	v.templates(a.Services, namesKnown)
}

// serviceSize is about what one instance of s takes stored: its
// description as JSON (Go's encoder writes '<' as 6 bytes, as the store's
// does).
func serviceSize(s *Service) int64 {
	b, err := json.Marshal(s)
	if err != nil {
		return 0 // not a description Load made; other checks refuse it
	}
	return int64(len(b))
}

// Bounds of an image reference: Docker's for the repository's name and
// the tag, and room for a digest.
const (
	maxImageName = 255
	maxImageRef  = 512
)

// checkImage checks what every image reference holds: printable ASCII (a
// reference has nothing else) and bounded lengths. The back-end parses
// the rest.
func checkImage(ref string) string {
	for _, r := range ref {
		if r <= ' ' || r > '~' {
			return fmt.Sprintf("may hold only printable ASCII characters, got %q", short(ref))
		}
	}
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	switch {
	case len(name) > maxImageName:
		return fmt.Sprintf("the image's name must be at most %d characters long, got %d", maxImageName, len(name))
	case len(ref) > maxImageRef:
		return fmt.Sprintf("must be at most %d characters long, got %d", maxImageRef, len(ref))
	}
	return ""
}

// checkName applies a character set and a length to a name; "" when the
// name is fine.
func checkName(name string, minLen, maxLen int, chars string, allowed func(rune) bool) string {
	for _, r := range name {
		if !allowed(r) {
			return fmt.Sprintf("may hold only %s, got %q", chars, short(name))
		}
	}
	if n := utf8.RuneCountInString(name); n < minLen || n > maxLen {
		return fmt.Sprintf("must be %d to %d characters long, got %d (%q)", minLen, maxLen, n, short(name))
	}
	return ""
}

func isAppNameChar(r rune) bool { return r == '@' || isServiceNameChar(r) }

func isServiceNameChar(r rune) bool {
	return r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// serviceNames checks that names, and the instance names built from them,
// are unique case-insensitively: they become DNS names, which are
// lower-cased. It reports whether every name and count could be checked,
// which the {dns_name#...} checks need.
func (v *validator) serviceNames(services []Service) bool {
	known := true
	usable := make([]bool, len(services))
	lower := make([]string, len(services))
	first := make(map[string]int, len(services)) // lower-cased name → first service
	for i := range services {
		sv := svc{v, i}
		usable[i] = sv.ok("name") && sv.ok("total_count")
		if !usable[i] {
			known = false
			continue
		}
		lower[i] = strings.ToLower(services[i].Name)
		if _, dup := first[lower[i]]; !dup {
			first[lower[i]] = i
		}
	}
	reported := make([]bool, len(services))
	for j := range services {
		if !usable[j] {
			continue
		}
		if i := first[lower[j]]; i != j {
			svc{v, j}.add("name", fmt.Sprintf("repeats the name of services[%d] (%q): service names are unique "+
				"regardless of case, as they become DNS names", i, services[i].Name))
			reported[j] = true
			continue
		}
		// A shorter name followed by digits, e.g. web for web1.
		name := lower[j]
		for k := len(name) - 1; k > 0 && isDigit(name[k]); k-- {
			i, ok := first[name[:k]]
			if !ok || !instanceCollision(name[:k], services[i].TotalCount, name, services[j].TotalCount) {
				continue
			}
			later, other := max(i, j), min(i, j)
			if !reported[later] {
				svc{v, later}.add("name", fmt.Sprintf("its instances' names collide with those of services[%d] (%q), "+
					"e.g. %s0", other, services[other].Name, name))
				reported[later] = true
			}
			break
		}
	}
	return known
}

func (v *validator) service(sv svc, s *Service) {
	if msg := checkName(s.Name, 3, 16, "letters, digits and '-'", isServiceNameChar); msg != "" && sv.ok("name") {
		sv.add("name", msg)
	}
	if sv.ok("image") {
		switch {
		case s.Image == "":
			sv.add("image", "must not be empty")
		case strings.IndexFunc(s.Image, unicode.IsSpace) >= 0:
			sv.add("image", fmt.Sprintf("must not contain white space, got %q", short(s.Image)))
		default:
			if msg := checkImage(s.Image); msg != "" {
				sv.add("image", msg)
			}
		}
	}
	essentialOK := sv.ok("essential_count")
	if essentialOK && s.EssentialCount < 1 {
		sv.add("essential_count", fmt.Sprintf("must be at least 1, got %d", s.EssentialCount))
		essentialOK = false
	}
	if sv.ok("total_count") {
		switch {
		case s.TotalCount < 1:
			sv.add("total_count", fmt.Sprintf("must be at least 1, got %d", s.TotalCount))
		case essentialOK && s.TotalCount < s.EssentialCount:
			sv.add("total_count", fmt.Sprintf("must be at least essential_count (%d), got %d",
				s.EssentialCount, s.TotalCount))
		case s.TotalCount > MaxInstances:
			sv.add("total_count", fmt.Sprintf("must be at most %d, got %d", MaxInstances, s.TotalCount))
		}
	}
	if s.Replicas != nil && sv.ok("replicas") && *s.Replicas < 1 {
		sv.add("replicas", fmt.Sprintf("must be at least 1, got %d", *s.Replicas))
	}
	if sv.ok("resources") {
		v.resources(sv, &s.Resources)
	}
	v.ports(sv, s.Ports)
	v.environmentNames(sv, s.Environment)
	v.volumes(sv, s.Volumes)
	if s.Command != nil && sv.ok("command") {
		if *s.Command == "" {
			sv.add("command", "must not be empty: use null to keep the image's command")
		} else if _, err := SplitCommand(*s.Command); err != nil {
			sv.add("command", err.Error())
		}
	}
	if s.WorkDir != "" && sv.ok("work_dir") {
		if msg := checkWorkDir(s.WorkDir); msg != "" {
			sv.add("work_dir", msg)
		}
	}
	if s.Network != "" && sv.ok("network") {
		if msg := checkNetwork(s.Network); msg != "" {
			sv.add("network", msg)
		}
	}
	for j, l := range s.Labels {
		if !sv.okElem("labels", j, "") {
			continue
		}
		if l == "" {
			sv.add(fmt.Sprintf("labels[%d]", j), "must not be empty")
			continue
		}
		for k := range j {
			if s.Labels[k] == l && sv.okElem("labels", k, "") {
				sv.add(fmt.Sprintf("labels[%d]", j), fmt.Sprintf("repeats labels[%d] (%q)", k, short(l)))
				break
			}
		}
	}
}

const minMemory = 1024

func (v *validator) resources(sv svc, r *Resources) {
	mem, cores := &r.Memory, &r.Cores
	lim := v.limits
	memLimit := func(rest string, n int64) {
		if lim.MaxMemory > 0 && n > lim.MaxMemory {
			sv.add(rest, fmt.Sprintf("must be at most %s (the administrative limit max_service_memory), got %s",
				formatBytes(lim.MaxMemory), formatBytes(n)))
		}
	}
	minOK := mem.Min != nil && sv.ok("resources.memory.min")
	if minOK {
		if *mem.Min < minMemory {
			sv.add("resources.memory.min", fmt.Sprintf("must be at least %d bytes, got %d", minMemory, *mem.Min))
			minOK = false
		} else {
			memLimit("resources.memory.min", *mem.Min)
		}
	}
	if mem.Max != nil && sv.ok("resources.memory.max") {
		switch {
		case *mem.Max < minMemory:
			sv.add("resources.memory.max", fmt.Sprintf("must be at least %d bytes, got %d", minMemory, *mem.Max))
		case minOK && *mem.Max < *mem.Min:
			sv.add("resources.memory.max", fmt.Sprintf("must be at least memory.min (%s), got %s",
				formatBytes(*mem.Min), formatBytes(*mem.Max)))
		default:
			memLimit("resources.memory.max", *mem.Max)
		}
	}
	coreLimit := func(rest string, f float64) {
		if lim.MaxCores > 0 && f > lim.MaxCores {
			sv.add(rest, fmt.Sprintf("must be at most %s (the administrative limit max_service_cores), got %s",
				formatFloat(lim.MaxCores), formatFloat(f)))
		}
	}
	// The reservation when cores.min is null, as in the original.
	effMin, effMinOK := DefaultCores, true
	if cores.Min != nil {
		effMin, effMinOK = *cores.Min, sv.ok("resources.cores.min")
		if effMinOK {
			if !(*cores.Min > 0) {
				sv.add("resources.cores.min", "must be greater than 0, got "+formatFloat(*cores.Min))
				effMinOK = false
			} else {
				coreLimit("resources.cores.min", *cores.Min)
			}
		}
	}
	if cores.Max != nil && sv.ok("resources.cores.max") {
		switch {
		case !(*cores.Max > 0):
			sv.add("resources.cores.max", "must be greater than 0, got "+formatFloat(*cores.Max))
		case effMinOK && *cores.Max < effMin && cores.Min == nil:
			sv.add("resources.cores.max", fmt.Sprintf("must be at least %s, the reservation when cores.min is null, got %s",
				formatFloat(effMin), formatFloat(*cores.Max)))
		case effMinOK && *cores.Max < effMin:
			sv.add("resources.cores.max", fmt.Sprintf("must be at least cores.min (%s), got %s",
				formatFloat(effMin), formatFloat(*cores.Max)))
		default:
			coreLimit("resources.cores.max", *cores.Max)
		}
	}
	if r.Shm != nil && sv.ok("resources.shm") && *r.Shm < 0 {
		sv.add("resources.shm", fmt.Sprintf("must be at least 0, got %d", *r.Shm))
	}
}

// DefaultCores is the reservation of a service whose cores.min is null.
const DefaultCores = 0.1

func (v *validator) ports(sv svc, ports []Port) {
	for j := range ports {
		p := &ports[j]
		if !sv.okElem("ports", j, "") {
			continue
		}
		if sv.okElem("ports", j, ".name") {
			if msg := safetext.NameProblem(p.Name); msg != "" {
				sv.v.add(sv.elem("ports", j, ".name"), msg)
			} else if utf8.RuneCountInString(p.Name) < 3 {
				sv.v.add(sv.elem("ports", j, ".name"), fmt.Sprintf("must be at least 3 characters long, got %q", p.Name))
			}
		}
		numOK := sv.okElem("ports", j, ".port_number")
		if numOK && (p.PortNumber < 1 || p.PortNumber > 65535) {
			sv.v.add(sv.elem("ports", j, ".port_number"), fmt.Sprintf("must be between 1 and 65535, got %d", p.PortNumber))
			numOK = false
		}
		protoOK := sv.okElem("ports", j, ".protocol")
		if protoOK && p.Protocol != "tcp" && p.Protocol != "udp" {
			sv.v.add(sv.elem("ports", j, ".protocol"), fmt.Sprintf(`must be "tcp" or "udp", got %q`, short(p.Protocol)))
			protoOK = false
		}
		if sv.okElem("ports", j, ".url_template") {
			if msg := checkURLTemplate(p.URLTemplate); msg != "" {
				sv.v.add(sv.elem("ports", j, ".url_template"), msg)
			}
		}
		if !numOK || !protoOK {
			continue
		}
		for k := range j {
			q := &ports[k]
			if q.PortNumber == p.PortNumber && q.Protocol == p.Protocol &&
				sv.okElem("ports", k, ".port_number") && sv.okElem("ports", k, ".protocol") {
				sv.v.add(sv.elem("ports", j, ".port_number"), fmt.Sprintf("%d/%s is already declared by ports[%d]",
					p.PortNumber, p.Protocol, k))
				break
			}
		}
	}
}

func checkURLTemplate(t string) string {
	var unknown string
	msg := scanTemplate(t, func(string) {}, func(name string) {
		if name != "ip_port" && name != "proxy_path" && unknown == "" {
			unknown = name
		}
	})
	if msg == "" && unknown != "" {
		msg = fmt.Sprintf("unknown placeholder {%s}; only {ip_port} and {proxy_path} are allowed", short(unknown))
	}
	return msg
}

// reservedEnv names the variables Zoe sets in containers; a user value
// would be silently overridden, or override Zoe's (a ZApp that set
// ZOE_PROXY_TOKEN would make a service accept a token anyone reading the
// ZApp knows).
func reservedEnv(name string) bool {
	switch name {
	case "EXECUTION_ID", "DEPLOY_NAME", "ZOE_USER", "ZOE_UID", "ZOE_GID", "SERVICE_NAME", "ZOE_WORKSPACE", ProxyTokenEnv:
		return true
	}
	return strings.HasPrefix(name, "REVERSE_PROXY_PATH_")
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// environmentNames checks the names; values are templates, checked once the
// instance names are known.
func (v *validator) environmentNames(sv svc, env []EnvVar) {
	for j := range env {
		if !sv.okElem("environment", j, "[0]") {
			continue
		}
		name := env[j].Name
		p := func() string { return sv.elem("environment", j, "[0]") }
		switch {
		case !isEnvName(name):
			v.add(p(), fmt.Sprintf("must be a variable name (letters, digits and '_', not starting with a digit), got %q", short(name)))
		case reservedEnv(name):
			v.add(p(), fmt.Sprintf("%s is set by Zoe in every container; remove it", name))
		default:
			for k := range j {
				if env[k].Name == name && sv.okElem("environment", k, "[0]") {
					v.add(p(), fmt.Sprintf("repeats environment[%d] (%s): set each variable once", k, name))
					break
				}
			}
		}
	}
}

func (v *validator) volumes(sv svc, vols []Volume) {
	for j := range vols {
		vol := &vols[j]
		if !sv.okElem("volumes", j, "") {
			continue
		}
		if sv.okElem("volumes", j, ".name") {
			p := func() string { return sv.elem("volumes", j, ".name") }
			switch {
			case vol.Name == "":
				v.add(p(), "must not be empty")
			case vol.Name == "." || vol.Name == ".." || strings.ContainsRune(vol.Name, '/') ||
				strings.IndexFunc(vol.Name, unicode.IsControl) >= 0:
				v.add(p(), fmt.Sprintf("must be a single path element, as the volume is mounted at /mnt/<name>, got %q", short(vol.Name)))
			case vol.Name == "workspace":
				v.add(p(), "workspace is reserved: Zoe mounts the user's workspace at /mnt/workspace")
			default:
				for k := range j {
					if vols[k].Name == vol.Name && sv.okElem("volumes", k, ".name") {
						v.add(p(), fmt.Sprintf("repeats volumes[%d]: both would be mounted at /mnt/%s", k, vol.Name))
						break
					}
				}
			}
		}
		if sv.okElem("volumes", j, ".path") {
			if msg := checkPath(vol.Path, "host path"); msg != "" {
				v.add(sv.elem("volumes", j, ".path"), msg)
			}
		}
	}
}

// MaxPathLen bounds the paths of a ZApp (volume paths, work_dir), in bytes;
// Linux's PATH_MAX is 4096.
const MaxPathLen = 1024

// checkPath says what is wrong with a path a ZApp gives, what it is:
// it must be absolute, at most MaxPathLen bytes, and hold no control or
// format characters, as it is shown in terminals and pages.
func checkPath(p, what string) string {
	switch {
	case len(p) > MaxPathLen:
		return fmt.Sprintf("must be at most %d bytes, got %d", MaxPathLen, len(p))
	case safetext.NameProblem(p) != "":
		return safetext.NameProblem(p)
	case !path.IsAbs(p):
		return fmt.Sprintf("must be an absolute %s, got %q", what, short(p))
	}
	return ""
}

// checkWorkDir: a clean absolute path, not under /proc, /sys or /dev,
// where a working directory can reach the host (CVE-2024-21626:
// /proc/self/fd/N led runc's leaked descriptor to the host's files).
func checkWorkDir(w string) string {
	if msg := checkPath(w, "path"); msg != "" {
		return msg
	}
	if slices.Contains(strings.Split(w, "/"), "..") || path.Clean(w) != w {
		return fmt.Sprintf("must be a clean path (no \"..\", \".\", \"//\" or trailing \"/\"), got %q", short(w))
	}
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if w == d || strings.HasPrefix(w, d+"/") {
			return fmt.Sprintf("must not be under %s, the kernel's files, got %q", d, short(w))
		}
	}
	return ""
}

// checkNetwork: the key is accepted for the original format's ZApps and
// ignored, as every execution gets its own network; a mode that would
// share the host's or another container's network is refused, so that a
// ZApp counting on it fails at submission rather than run elsewhere.
func checkNetwork(n string) string {
	if n == "host" || strings.HasPrefix(n, "container:") {
		return fmt.Sprintf("%q is refused: every execution gets its own network, and Zoe never runs a ZApp in the host's or another container's; Zoe does not take a network from the ZApp", short(n))
	}
	return ""
}

// templates checks the environment values; {dns_name#<instance>} is
// checked only when every service's name and count are known.
func (v *validator) templates(services []Service, namesKnown bool) {
	var set instanceSet // built on the first {dns_name#...}
	for i := range services {
		sv := svc{v, i}
		for j, e := range services[i].Environment {
			if !sv.okElem("environment", j, "[1]") {
				continue
			}
			var unknown string
			msg := scanTemplate(e.Value, func(string) {}, func(name string) {
				if unknown != "" || isPlainVariable(name) {
					return
				}
				if inst, ok := strings.CutPrefix(name, varDNSPrefix); ok {
					if !namesKnown {
						return
					}
					if set == nil {
						set = newInstanceSet(services)
					}
					if set.has(inst) {
						return
					}
				}
				unknown = name
			})
			if msg == "" && unknown != "" {
				if strings.HasPrefix(unknown, varDNSPrefix) {
					msg = fmt.Sprintf("{%s} names no instance of this ZApp; its instances are %s",
						short(unknown), listInstances(services))
				} else {
					msg = fmt.Sprintf("unknown variable {%s}; %s", short(unknown), knownVariables(listInstances(services)))
				}
			}
			if msg != "" {
				v.add(sv.elem("environment", j, "[1]"), msg)
			}
		}
	}
}
