package zapp

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ExpandContext is what an execution adds to a description.
type ExpandContext struct {
	ExecutionID   string // e.g. "42"
	ExecutionName string
	UserName      string
	// UID and GID of the user's files; ZOE_UID and ZOE_GID are set only
	// when known.
	UID, GID   *uint32
	Deployment string
	// ProxyBase prefixes the proxy paths:
	// REVERSE_PROXY_PATH_<port> = <ProxyBase>/<execution id>/<instance>/<port>.
	ProxyBase string
	// Limits are those the description is validated against before
	// expansion; the zero value sets none.
	Limits Limits
	// NewSecret makes the ProxyToken of each instance with a proxied port
	// (Zoe passes crypto/rand's Text; tests a fixed sequence, so that
	// expansion stays deterministic); nil gives none.
	NewSecret func() string
}

// ProxyTokenEnv is the variable that holds an instance's ProxyToken.
const ProxyTokenEnv = "ZOE_PROXY_TOKEN"

// Instance is one service instance (one container) of an execution.
type Instance struct {
	Name      string `json:"name"`    // <service><n>
	Service   string `json:"service"` // the group's name
	Index     int    `json:"index"`   // n
	Essential bool   `json:"essential"`
	// DNSName is <instance>-<execution id>-<deployment>, lower-cased;
	// empty until Bind.
	DNSName string  `json:"dns_name"`
	Image   string  `json:"image"`
	Command *string `json:"command"`
	WorkDir string  `json:"work_dir,omitempty"`
	// Environment is the user's variables with their templates resolved,
	// then those Zoe sets; no name appears twice. Until Bind (as
	// Instances returns it), the user's variables as written.
	Environment  []EnvVar `json:"environment"`
	Ports        []Port   `json:"ports"`
	Volumes      []Volume `json:"volumes"`
	Labels       []string `json:"labels,omitempty"`
	StartupOrder int      `json:"startup_order"`
	Monitor      bool     `json:"monitor"`
	// MemoryReservation is memory.min (0 when null); MemoryLimit is
	// memory.max, or memory.min when max is null, or the administrative
	// limit max_service_memory when both are (0: none, only when that
	// limit is off too), so that no service runs without a memory limit
	// while the administrative one is on.
	MemoryReservation int64 `json:"memory_reservation"`
	MemoryLimit       int64 `json:"memory_limit"`
	// Cores is cores.min (DefaultCores when null); CoresLimit is cores.max,
	// 0 for none.
	Cores      float64 `json:"cores"`
	CoresLimit float64 `json:"cores_limit"`
	Shm        int64   `json:"shm"`
	// ProxyToken is a secret the instance gets as ZOE_PROXY_TOKEN and
	// Zoe's proxy presents to it as "Authorization: token <it>": its ports
	// are also published where others may reach them (other users of the
	// host, other containers), and it lets the service refuse what does
	// not come through the proxy. It is made once, at submission, for an
	// instance with a proxied port, and stored with the instance, so that
	// a restart or an adoption finds the same one as the container's
	// environment; "" for none. Only its owner and admins may see it.
	ProxyToken string `json:"proxy_token,omitempty"`
}

// WorkspacePath is where Zoe mounts the user's workspace.
const WorkspacePath = "/mnt/workspace"

// Expand turns a description into the instances of one execution: the
// essential instances of every service, services in startup_order then
// document order, then the elastic ones in the same order. The
// description must validate against c.Limits; it is not modified. It is
// Instances (with c.NewSecret), then Bind of each instance.
func Expand(a *App, c ExpandContext) ([]Instance, error) {
	out, err := Instances(a, c.Limits, c.NewSecret)
	if err != nil {
		return nil, err
	}
	b := newBinder(c)
	for i := range out {
		if out[i], err = b.bind(out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Instances returns the instances of one execution of a, in Expand's order,
// without what depends on the execution, which Bind adds: their DNSName is
// empty and their Environment holds the service's variables as written,
// templates unresolved, without Zoe's. Zoe stores them when an execution
// is submitted, before the store gives it an id, and binds each one when
// it starts, once the owner's uid and gid are known too. Each instance with
// a proxied port gets its ProxyToken from newSecret, here because the
// store keeps what Instances returns and a token must not change between
// starts (nil: none). The description must validate against l; it is not
// modified.
func Instances(a *App, l Limits, newSecret func() string) ([]Instance, error) {
	if a == nil {
		return nil, errors.New("expand: no description")
	}
	if probs := Validate(a, l); len(probs) > 0 {
		return nil, fmt.Errorf("expand: invalid description: %w", probs)
	}
	order := make([]int, len(a.Services))
	total := 0
	for i := range order {
		order[i] = i
		total += a.Services[i].TotalCount
	}
	slices.SortStableFunc(order, func(x, y int) int {
		return cmp.Compare(a.Services[x].StartupOrder, a.Services[y].StartupOrder)
	})
	out := make([]Instance, 0, total)
	for _, essential := range []bool{true, false} {
		for _, i := range order {
			s := &a.Services[i]
			from, to := 0, s.EssentialCount
			if !essential {
				from, to = s.EssentialCount, s.TotalCount
			}
			for n := from; n < to; n++ {
				in := instance(s, n, essential, l)
				if newSecret != nil && slices.ContainsFunc(in.Ports, func(p Port) bool { return p.Proxy }) {
					in.ProxyToken = newSecret()
				}
				out = append(out, in)
			}
		}
	}
	return out, nil
}

func instance(s *Service, n int, essential bool, l Limits) Instance {
	inst := Instance{
		Name: s.Name + strconv.Itoa(n), Service: s.Name, Index: n, Essential: essential,
		Image: s.Image, WorkDir: s.WorkDir, Environment: slices.Clone(s.Environment),
		Ports: slices.Clone(s.Ports), Volumes: slices.Clone(s.Volumes), Labels: slices.Clone(s.Labels),
		StartupOrder: s.StartupOrder, Monitor: s.Monitor, Cores: DefaultCores,
	}
	if s.Command != nil {
		cmd := *s.Command
		inst.Command = &cmd
	}
	r := &s.Resources
	if l.MaxMemory > 0 {
		inst.MemoryLimit = l.MaxMemory
	}
	if r.Memory.Min != nil {
		inst.MemoryReservation, inst.MemoryLimit = *r.Memory.Min, *r.Memory.Min
	}
	if r.Memory.Max != nil {
		inst.MemoryLimit = *r.Memory.Max
	}
	if r.Cores.Min != nil {
		inst.Cores = *r.Cores.Min
	}
	if r.Cores.Max != nil {
		inst.CoresLimit = *r.Cores.Max
	}
	if r.Shm != nil {
		inst.Shm = *r.Shm
	}
	return inst
}

// Bind completes in, an instance as Instances returns it (stored and read
// back as JSON or not), for the execution c: its DNS name, its
// environment's templates resolved and Zoe's variables added (among them
// ZOE_PROXY_TOKEN, from in.ProxyToken). It is a pure function of in and c:
// Bind(Instances(a, l, f)[i], c) is Expand(a, c)[i] when c.NewSecret gives
// what f gave.
// Instances validated the templates; {dns_name#<instance>} names an
// instance of the same execution. An instance bound already is refused.
func Bind(in Instance, c ExpandContext) (Instance, error) {
	b := newBinder(c)
	return b.bind(in)
}

type binder struct {
	ctx       ExpandContext
	proxyBase string
	dnsSuffix string // -<execution id>-<deployment>, lower-cased
	uid, gid  string // "" when unknown
	buf       []byte // reused to resolve templates
}

func newBinder(c ExpandContext) *binder {
	b := &binder{ctx: c, proxyBase: strings.TrimRight(c.ProxyBase, "/"),
		dnsSuffix: strings.ToLower("-" + c.ExecutionID + "-" + c.Deployment)}
	if c.UID != nil {
		b.uid = strconv.FormatUint(uint64(*c.UID), 10)
	}
	if c.GID != nil {
		b.gid = strconv.FormatUint(uint64(*c.GID), 10)
	}
	return b
}

func (b *binder) bind(inst Instance) (Instance, error) {
	if inst.DNSName != "" {
		return Instance{}, fmt.Errorf("bind %s: bound already, as %s", inst.Name, inst.DNSName)
	}
	name := inst.Name
	inst.DNSName = strings.ToLower(name) + b.dnsSuffix
	env := make([]EnvVar, 0, len(inst.Environment)+8+len(inst.Ports))
	for _, v := range inst.Environment {
		val, err := b.resolve(v.Value, inst.DNSName)
		if err != nil {
			return Instance{}, fmt.Errorf("expand: %s: environment variable %s: %w", name, v.Name, err)
		}
		env = append(env, EnvVar{v.Name, val})
	}
	c := &b.ctx
	env = append(env,
		EnvVar{"EXECUTION_ID", c.ExecutionID},
		EnvVar{"DEPLOY_NAME", c.Deployment},
		EnvVar{"ZOE_USER", c.UserName})
	if c.UID != nil {
		env = append(env, EnvVar{"ZOE_UID", b.uid})
	}
	if c.GID != nil {
		env = append(env, EnvVar{"ZOE_GID", b.gid})
	}
	env = append(env, EnvVar{"SERVICE_NAME", name}, EnvVar{"ZOE_WORKSPACE", WorkspacePath})
	for j, p := range inst.Ports {
		// One variable per port number, tcp and udp alike.
		if !slices.ContainsFunc(inst.Ports[:j], func(q Port) bool { return q.PortNumber == p.PortNumber }) {
			env = append(env, EnvVar{"REVERSE_PROXY_PATH_" + strconv.Itoa(p.PortNumber),
				b.proxyBase + "/" + c.ExecutionID + "/" + name + "/" + strconv.Itoa(p.PortNumber)})
		}
	}
	if inst.ProxyToken != "" {
		env = append(env, EnvVar{ProxyTokenEnv, inst.ProxyToken})
	}
	inst.Environment = env
	return inst, nil
}

// resolve substitutes the template variables of one value.
func (b *binder) resolve(value, selfDNS string) (string, error) {
	if indexBrace(value) < 0 {
		return value, nil
	}
	buf := b.buf[:0]
	var unknown string
	msg := scanTemplate(value, func(s string) { buf = append(buf, s...) }, func(name string) {
		switch name {
		case varUserName:
			buf = append(buf, b.ctx.UserName...)
		case varExecutionID:
			buf = append(buf, b.ctx.ExecutionID...)
		case varExecutionName:
			buf = append(buf, b.ctx.ExecutionName...)
		case varDeploymentName:
			buf = append(buf, b.ctx.Deployment...)
		case varDNSSelf:
			buf = append(buf, selfDNS...)
		default:
			if inst, ok := strings.CutPrefix(name, varDNSPrefix); ok && inst != "" {
				buf = append(buf, strings.ToLower(inst)...)
				buf = append(buf, b.dnsSuffix...)
			} else if unknown == "" {
				unknown = name
			}
		}
	})
	b.buf = buf
	// Validate has refused both already; kept so that no path panics or
	// silently drops text.
	if msg != "" {
		return "", errors.New(msg)
	}
	if unknown != "" {
		return "", fmt.Errorf("unknown variable {%s}", unknown)
	}
	return string(buf), nil
}

// Clone returns a deep copy of a, sharing nothing with it.
func (a *App) Clone() *App {
	if a == nil {
		return nil
	}
	c := *a
	if a.Services != nil {
		c.Services = make([]Service, len(a.Services))
		for i := range a.Services {
			c.Services[i] = a.Services[i].clone()
		}
	}
	return &c
}

func (s Service) clone() Service {
	c := s
	c.Replicas = clonePtr(s.Replicas)
	c.Resources.Memory.Min = clonePtr(s.Resources.Memory.Min)
	c.Resources.Memory.Max = clonePtr(s.Resources.Memory.Max)
	c.Resources.Cores.Min = clonePtr(s.Resources.Cores.Min)
	c.Resources.Cores.Max = clonePtr(s.Resources.Cores.Max)
	c.Resources.Shm = clonePtr(s.Resources.Shm)
	c.Ports = slices.Clone(s.Ports)
	c.Environment = slices.Clone(s.Environment)
	c.Volumes = slices.Clone(s.Volumes)
	c.Command = clonePtr(s.Command)
	c.Labels = slices.Clone(s.Labels)
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
