# Zoe on a simulated cluster: no Docker needed. Services "run" for a while
# and exit as their ZOE_SIM_* environment says (plugins/backend-sim/README.md).
# Relative paths resolve against this file's directory.
#
#   make build
#   bin/zoe users-file init --if-missing .zoe/users.csv   # prints the admin's password the first time
#   bin/zoe config validate examples/sim.hcl
#   bin/zoe server -config examples/sim.hcl
#
# It listens on another port and keeps its state elsewhere than
# examples/zoe.hcl, so both can run side by side.

listen          = "127.0.0.1:5002"
deployment_name = "sim"
data_dir        = "../.zoe/sim-data"
log_level       = "info"
shop_dir        = "shop"

state {
  sqlite = "zoe.db" # relative to data_dir
}

scheduler {
  policy    = "FIFO"
  placement = "average"
  backfill  = false
}

limits {
  max_service_cores  = 16
  max_service_memory = "64GiB"
}

# Every service's stdout and stderr are kept under <data_dir>/logs as they
# are produced, so they outlive the container and the daemon's restarts
# (GET /api/v1/services/{id}/logs, zoe exec logs); they are deleted with
# their execution. A service's file is rotated at max_file_size, and
# max_files rotated files are kept.
service_logs {
  max_file_size = "10MiB"
  max_files     = 3
}

# The users file (one admin, random password, from zoe users-file init); add
# users with bin/zoe users-file add .zoe/users.csv NAME.
auth "file" {
  users_file = "../.zoe/users.csv"
}

workspace "dir" {
  base_path = "../.zoe/sim-workspaces"
}

# The simulated cluster. Its state (services, networks, pulled images) lives
# in state_file and outlives the plugin, so services keep "running" across
# restarts of the daemon; delete the file for an empty cluster.
backend "sim" {
  # Default: <data_dir>/backend-sim/<deployment_name>.json
  # state_file = "../.zoe/sim-data/backend-sim/sim.json"

  # How long a service runs when its ZOE_SIM_RUN says nothing ("forever" for
  # services that only end when stopped).
  default_run = "1h"

  # Images missing on a node are pulled (image_pull events) rather than
  # refused.
  pull_images = true

  # Services serve a small page on their published ports while they run
  # (on nodes whose address is 127.0.0.1, as here), so that the links of an
  # execution's page lead through Zoe's proxy to something: the page names
  # the service and echoes the request. ZOE_SIM_HTTP=0 in a service's
  # environment turns it off for that service.
  serve_http = true

  node "node1" {
    cores   = 16
    memory  = "64GiB"
    labels  = ["ssd", "spark"]
    images  = ["zoe/notebook-dask:bookworm-1", "zoe/dask-scheduler:bookworm-1", "zoe/dask-worker:bookworm-1"]
    address = "127.0.0.1"
  }

  node "node2" {
    cores  = 16
    memory = "64GiB"
    labels = ["ssd", "spark"]
  }

  node "gpu1" {
    cores  = 32
    memory = "128GiB"
    labels = ["gpu"]
  }

  # Draining for maintenance: runs what it has, takes nothing new.
  node "old1" {
    cores    = 8
    memory   = "16GiB"
    disabled = true
  }
}
