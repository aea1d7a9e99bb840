package swarm

// StopViaUpdate makes Stop update the service, as it does for a task on
// another node than the manager's, whatever node the task is on.
func (p *Plugin) StopViaUpdate() { p.viaUpdate = true }

// AfterServiceList sets what List runs between its listing of the
// services and that of their tasks.
func (p *Plugin) AfterServiceList(f func()) { p.afterServiceList = f }
