// Package dockerapi holds what Zoe's two back-ends on the Docker engine API,
// plugins/backend-docker (containers) and plugins/backend-swarm (swarm-mode
// services), do the same way: connecting to an engine (ClientOptions, the
// tls block), giving the engine's errors their sdk category (Wrap), the
// deployment's labels and the environment in the engine's terms, reading
// container logs (LogsOptions, CopyLogs) and the container state times and
// exit codes an OOM kill is judged by. What differs between containers and
// services stays in each plugin.
package dockerapi
