# Zoe on a Docker swarm (plugins/backend-swarm/README.md): every service
# instance is a swarm service of one replica, placed on the node Zoe's
# scheduler picks; every execution an attachable overlay network. Relative
# paths resolve against this file's directory.
#
#   docker swarm init                     # on the manager, if it is not one yet
#   docker node update --label-add spark=true <node>   # for the shop's Spark entry
#   make build test-images                # the example images, on the manager's engine
#   bin/zoe users-file init --if-missing .zoe/users.csv
#   bin/zoe config validate examples/swarm.hcl
#   bin/zoe server -config examples/swarm.hcl          # on 127.0.0.1:5004
#
# Every node must have the ZApps' images (the swarm pulls what a node
# lacks when a registry is reachable), and the workspaces (workspace "dir"
# below) must be one shared filesystem (NFS, CephFS) mounted at the same
# path on every node: services mount a user's directory as a bind. On a
# swarm of one node, a local directory is enough.

listen          = "127.0.0.1:5004"
deployment_name = "swarm"
data_dir        = "../.zoe/swarm-data"
log_level       = "info"
shop_dir        = "shop"

state {
  sqlite = "zoe.db" # relative to data_dir
}

auth "file" {
  users_file = "../.zoe/users.csv"
}

workspace "dir" {
  base_path = "../.zoe/swarm-workspaces" # the shared filesystem's mount point
}

backend "swarm" {
  # A manager's engine: unix:///var/run/docker.sock on the manager itself,
  # or tcp://manager1:2376 with the tls block below. Empty: DOCKER_HOST.
  address = "unix:///var/run/docker.sock"
  # tls {
  #   ca_file   = "certs/ca.pem"
  #   cert_file = "certs/cert.pem"
  #   key_file  = "certs/key.pem"
  # }

  # "host": a published port is the node's address and a port the node
  # picks (works everywhere). "ingress": the routing mesh (needs IPVS in
  # every node's kernel).
  publish_mode = "host"

  # Engines before Docker 27 cannot set no-new-privileges per service: run
  # every node's dockerd with --no-new-privileges ("no-new-privileges": true
  # in /etc/docker/daemon.json) and set this to true, or Zoe refuses every
  # service that may not escalate privileges (all of them, by default).
  # On Docker 27 and later leave it false.
  engine_no_new_privileges = false

  volume_driver     = ""      # driver of named volumes; "" is each node's local
  stop_grace_period = "10s"   # SIGTERM to SIGKILL, fixed when a service is created
  poll_interval     = "500ms" # how often task states are read
}
