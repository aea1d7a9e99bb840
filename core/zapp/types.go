// Package zapp holds ZApp descriptions: the JSON format (version 3, the
// original Zoe's), its strict decoding and validation with every problem
// reported by JSON path, its template variables, and its expansion into the
// service instances of one execution.
package zapp

// Version is the only description format version Zoe runs.
const Version = 3

// App is a ZApp description.
type App struct {
	Name string `json:"name"`
	// Version is the format version; always 3 once validated.
	Version int `json:"version"`
	// WillEnd marks a batch application (true) as opposed to an interactive one.
	WillEnd bool `json:"will_end"`
	// Size is a hint for the SIZE scheduling policy.
	Size     int64     `json:"size"`
	Services []Service `json:"services"`
}

// Service is one group of identical service instances.
type Service struct {
	// Name of the group; instances are named <name><n>.
	Name  string `json:"name"`
	Image string `json:"image"`
	// Monitor marks the service whose end ends a batch execution; at least
	// one service has it.
	Monitor bool `json:"monitor"`
	// StartupOrder: groups start in ascending order.
	StartupOrder int `json:"startup_order"`
	// EssentialCount instances must run for the execution to run; the rest
	// up to TotalCount are elastic.
	EssentialCount int `json:"essential_count"`
	TotalCount     int `json:"total_count"`
	// Replicas is accepted for compatibility and unused.
	Replicas    *int      `json:"replicas,omitempty"`
	Resources   Resources `json:"resources"`
	Ports       []Port    `json:"ports"`
	Environment []EnvVar  `json:"environment"`
	Volumes     []Volume  `json:"volumes"`
	// Command overrides the image's command; nil keeps it.
	Command *string `json:"command"`
	WorkDir string  `json:"work_dir,omitempty"`
	// Labels a node must all carry to host the service.
	Labels []string `json:"labels,omitempty"`
	// Network is accepted for compatibility and ignored: Zoe gives each
	// execution its own network. "host" and "container:..." are refused.
	Network string `json:"network,omitempty"`
}

// Resources a service instance asks for.
type Resources struct {
	// Memory in bytes: Min is reserved, Max is the limit (Min when null).
	Memory IntRange `json:"memory"`
	// Cores: Min is reserved (0.1 when null), Max is the limit.
	Cores FloatRange `json:"cores"`
	// Shm is the size of /dev/shm in bytes.
	Shm *int64 `json:"shm,omitempty"`
}

// IntRange is a {min, max} pair of integers, each possibly null.
type IntRange struct {
	Min *int64 `json:"min"`
	Max *int64 `json:"max"`
}

// FloatRange is a {min, max} pair of numbers, each possibly null.
type FloatRange struct {
	Min *float64 `json:"min"`
	Max *float64 `json:"max"`
}

// Port is a port a service listens on.
type Port struct {
	// Name is a human label, e.g. "Jupyter Notebook".
	Name       string `json:"name"`
	PortNumber int    `json:"port_number"`
	// Protocol is tcp or udp.
	Protocol string `json:"protocol"`
	// URLTemplate builds the URL shown to users: {ip_port} becomes the
	// published address, {proxy_path} the path through Zoe's proxy.
	URLTemplate string `json:"url_template"`
	// Proxy asks for the port to be reachable through Zoe's proxy.
	Proxy bool `json:"proxy,omitempty"`
}

// EnvVar is one environment variable; in JSON a [name, value] pair. The
// value may hold template variables such as {user_name}.
type EnvVar struct {
	Name  string
	Value string
}

// Volume is a host path mounted at /mnt/<name>.
type Volume struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only"`
}
