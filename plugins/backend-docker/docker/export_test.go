package docker

// CacheCounts reports, over the plugin's hosts, the inspects List and
// Nodes made and the containers whose details and reservations are kept.
func (p *Plugin) CacheCounts() (inspects, details, reserved int) {
	rt, err := p.runtime()
	if err != nil {
		return 0, 0, 0
	}
	for _, h := range rt.hosts {
		i, d, r := h.cache.counts()
		inspects, details, reserved = inspects+i, details+d, reserved+r
	}
	return inspects, details, reserved
}
