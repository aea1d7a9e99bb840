# Zoe's configuration: one HCL file for the core and every plugin it loads.
# `make run` serves this file. Relative paths resolve against this file's
# directory. `zoe config validate FILE` checks a file, plugins included.
#
# The smallest useful configuration is the two plugin blocks at the end:
#   auth "file" { users_file = "users.csv" }
#   workspace "dir" { base_path = "/srv/zoe-workspaces" }

# Where the HTTP API listens (host:port). Default "127.0.0.1:5001". Port 0
# lets the system pick one; the "zoe is ready" line of the log says which.
listen = "127.0.0.1:5001"

# The name of this Zoe instance: it ends up in container names, DNS names,
# labels and workspace paths, so several deployments can share a platform.
# Lower-case letters, digits and '-'. Default "prod".
deployment_name = "dev"

# Where Zoe keeps its state and service logs. Default "/var/lib/zoe".
data_dir = "../.zoe/data"

# Where plugin binaries (zoe-plugin-<kind>-<name>) are found. Default: the
# directory of the zoe binary, which is bin/ after `make build`.
# plugin_dir = "/usr/lib/zoe/plugins"

# trace, debug, info, warn or error. Default "info".
log_level = "info"

# The ZApp shop: one sub-directory per ZApp with a manifest.json; problems
# are logged at start-up. `zoe shop check DIR` checks one offline.
shop_dir = "shop"

# Serve the API over HTTPS. Off by default.
# tls {
#   cert_file = "/etc/zoe/tls/cert.pem"
#   key_file  = "/etc/zoe/tls/key.pem"
# }

# The state store: an embedded SQLite file (the default, "<data_dir>/zoe.db")
# or PostgreSQL. env("NAME") reads an environment variable, which keeps
# secrets out of this file; env("NAME", "fallback") gives a default.
state {
  sqlite = "zoe.db" # relative to data_dir
  # postgres = env("ZOE_PG_DSN")
}

# How queued executions are started: policy FIFO, SIZE or DYNSIZE; placement
# average, waterfill or random; backfill lets smaller executions that fit now
# start ahead of a large one that waits, instead of strict order.
scheduler {
  policy    = "FIFO"
  placement = "average"
  backfill  = false
}

# The most one service of a ZApp may ask for. A ZApp that asks for more is
# refused with a message that names the limit.
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

# The container policy, applied when a ZApp is submitted (a refusal is a 400
# naming the JSON path and the rule) and again before every start. This file
# is the only place of trust: admins' own ZApps and shop entries get no more
# than what it grants to their role. Without this block: no host path may be
# mounted, any image runs, containers run as the owner's uid:gid from the auth
# source or else 65534:65534, never as root nor in its group, with
# no-new-privileges, every capability dropped and at most 1024 processes.
# containers {
#   run_as                     = "65534:65534" # uid:gid of users the auth source gives no ids for
#                                              # (default: 65534:65534 under root, else the daemon's own)
#   allow_root                 = false         # true: those users' containers keep the image's user; uid 0 allowed
#   allow_privilege_escalation = false         # true: setuid binaries work (no no-new-privileges)
#   keep_capabilities          = false         # true: the engine's default capabilities, not none
#   pids_limit                 = 1024          # processes and threads per container; -1: no limit
#
#   # Images ZApps may run, as the ZApp writes them; * matches any characters
#   # but '/' (Go's path.Match). Absent or empty: any image.
#   images = ["zoe/*", "registry.example.org/lab/*"]
#
#   # Host directories ZApps may mount, and everything under them (paths are
#   # cleaned; ".." and symbolic links leading out are refused). Never
#   # allowed: /, the Docker socket, /proc, /sys, /dev, /etc, /root, /boot,
#   # data_dir, the workspaces' base_path, the users file, this file.
#   host_path "/srv/datasets" {
#     read_only = true             # default; a ZApp asking read-write is refused
#     # roles   = ["user", "admin"] # default: every role
#   }
# }

# What one client may hold of the API server (these are the defaults). A
# connection over max_connections, or over max_connections_per_address from
# one client address (an IPv6 client: its /64), is closed at once; keep
# max_connections well under the daemon's open-files limit (ulimit -n), and
# raise max_connections_per_address when many users share an address (a
# NAT: a browser opens about 6 connections). A
# request has read_header_timeout to send its header (a TLS handshake
# included), body_timeout to send its body and write_timeout to be answered;
# streams (GET /events, followed logs) last while they send, each write
# having write_timeout. password_checks bounds the password checks by the
# auth plugins that run at once (default: the number of cores); failed
# logins are throttled per address and user name (README, "Bad clients").
http {
  max_connections             = 4096
  max_connections_per_address = 128
  max_header_size             = "64KiB"
  read_header_timeout         = "10s"
  body_timeout                = "30s"
  write_timeout               = "60s"
  idle_timeout                = "2m"
  # Behind a reverse proxy: its addresses (or CIDR ranges). X-Forwarded-For
  # then names the client whose failed logins are counted, and its
  # X-Forwarded-Proto: https marks the login cookies Secure; without this,
  # both headers are ignored.
  # trusted_proxies = ["127.0.0.1"]
  # Serve everything under a path instead of the root, behind a proxy that
  # forwards https://example.org/zoe/...: the web pages at /zoe/, the API at
  # /zoe/api/v1/, the services' web interfaces at /zoe/proxy/.
  # base_path = "/zoe"
}

# E-mail notifications, off without this block: the owner of an execution
# gets a mail when it ends in error, or when it ends (in any way) after
# running at least long_running (unset: errors only). The address is the
# one an admin set (zoe user set NAME --email ADDRESS), else the auth
# source's; users without one get none. Mail is sent in the background and
# retried with back-off (max_attempts, queue_size bound it); failures are
# logged at warn. It links to <public_url>/executions/<id>: public_url is
# the address users open Zoe at, with the base path Zoe is served under.
# notifications {
#   long_running = "4h"
#   public_url   = "https://zoe.example.org"
#   # queue_size   = 1000
#   # max_attempts = 6
#   smtp {
#     server   = "smtp.example.org"
#     # "starttls" (default, port 587; a server without STARTTLS is refused),
#     # "tls" (TLS from the first byte, port 465) or "none" (plain text,
#     # port 25, no credentials allowed).
#     tls      = "starttls"
#     # port   = 587
#     # ca_file = "/etc/zoe/smtp-ca.pem"  # default: the system's CAs
#     username = "zoe"
#     password = env("ZOE_SMTP_PASSWORD")  # never written in the file, never logged
#     from     = "Zoe <zoe@example.org>"
#     # timeout = "30s"                   # per mail, connection to QUIT
#   }
# }

# Plugins: one labelled block per plugin in use, the label being the plugin's
# name (binary zoe-plugin-<kind>-<label>). Besides the plugin's own settings,
# every plugin block accepts:
#   checksum      = "sha256:<hex>"  the binary's expected SHA-256, checked before every start
#   start_timeout = "30s"           how long the plugin may take to start
#   binary        = "/path"         a binary elsewhere than plugin_dir

# Authentication, tried in the order of the blocks. The file plugin reads
# username,password,role[,uid,gid] lines; role is guest, user or admin;
# passwords are bcrypt hashes or plain text; a password starting with '!'
# marks a disabled user. The file must be readable by its owner only.
# `make run` creates it on first use with one admin and a random password;
# `zoe users-file` adds users, resets passwords and changes roles.
auth "file" {
  users_file = "../.zoe/users.csv"
}

# Users from an LDAP directory (plugins/auth-ldap/README.md; a whole
# configuration in examples/ldap.hcl). Before or after the file block: the
# first block that accepts the password gives the identity, so keep the
# file's local accounts on names the directory does not have. Every setting:
#
# auth "ldap" {
#   urls           = ["ldaps://ldap1.example.org", "ldaps://ldap2.example.org"] # failover, in order
#   start_tls      = false        # with ldap:// URLs: upgrade with StartTLS
#   ca_file        = "ldap-ca.pem" # CAs of the servers' certificates; default: the system's
#   allow_insecure = false        # true allows plain ldap:// without TLS (tests, same host)
#   timeout        = "10s"        # connecting, and each request
#   pool_size      = 4            # connections open at most
#
#   bind_dn       = "cn=zoe,ou=services,dc=example,dc=org" # none: anonymous searches
#   bind_password = env("ZOE_LDAP_PASSWORD")               # never in this file, never logged
#   # or, instead of bind_dn and bind_password, Kerberos (SASL GSSAPI) with a keytab:
#   # sasl_gssapi {
#   #   principal         = "zoe"
#   #   realm             = "EXAMPLE.ORG"
#   #   keytab            = "zoe.keytab"       # chmod 600
#   #   krb5_conf         = "/etc/krb5.conf"
#   #   service_principal = "ldap/ldap1.example.org" # default: ldap/<host of the URL>
#   # }
#   user_base     = "ou=people,dc=example,dc=org"
#   user_filter   = "(uid=%s)"    # %s: the login name, escaped
#   # or, instead of user_base and user_filter, a direct bind:
#   # user_dn_template = "uid=%s,ou=people,dc=example,dc=org"
#   disabled_filter = "(pwdAccountLockedTime=*)" # these cannot log in, and lose their tokens
#
#   username_attribute     = "uid"  # the Zoe username, as the directory spells it
#   email_attribute        = "mail"
#   display_name_attribute = "cn"
#
#   group_base = "ou=groups,dc=example,dc=org" # groupOfNames, groupOfUniqueNames, posixGroup; memberOf counts too
#   role {                        # first match wins
#     gid_number = 5000           # the user's gidNumber
#     role       = "admin"
#   }
#   role {
#     group = "zoe-users"         # a group's cn (under group_base), or its DN
#     role  = "user"
#   }
#   default_role = "guest"        # none: users no rule matches are refused
# }

# Users' private workspaces, mounted at /mnt/workspace in their containers:
# <base_path>/<deployment_path>/<username>, deployment_path defaulting to
# deployment_name.
workspace "dir" {
  base_path = "../.zoe/workspaces"
  # deployment_path = "dev"
}

# The container back-end: with one, `zoe server` runs the lifecycle engine.
# The Docker back-end drives the local engine (DOCKER_HOST, else
# /var/run/docker.sock) as the node "local": one bridge network per
# execution, services as containers, ports published on 127.0.0.1. An engine
# that does not answer is no configuration error: the node is "unreachable"
# and executions wait. `make images` builds the analytics images the shop's
# entries run (Dask, Jupyter, Python; images/README.md), `make test-images`
# those of examples/docker; `make run` does both. examples/sim.hcl uses the
# simulated back-end instead; without a backend block the daemon serves the
# API alone.
backend "docker" {
  pull_images = true # pull images the engine lacks

  # The local engine, with labels that a ZApp's services may ask for (a
  # service's "labels"; a ZApp asking for labels no node has is refused).
  # Without host blocks the local engine is "local" too, with no labels.
  host "local" {
    labels = ["ssd"]
  }

  # One block per engine to drive several; the label is the node's name.
  # host "node1" {
  #   address          = "tcp://10.0.0.1:2376"
  #   external_address = "10.0.0.1" # where users reach published ports
  #   labels           = ["gpu"]
  #   cores            = 12 # what Zoe may reserve there; default: the engine's CPUs
  #   tls {
  #     ca_file   = "certs/ca.pem"
  #     cert_file = "certs/cert.pem"
  #     key_file  = "certs/key.pem"
  #   }
  # }
}

# A Docker swarm instead (plugin zoe-plugin-backend-swarm; one back-end
# block per deployment): every service instance is a swarm service of one
# replica, placed on the node Zoe's scheduler picks; every execution an
# attachable overlay network. See plugins/backend-swarm/README.md.
# backend "swarm" {
#   address = "tcp://manager1:2376" # a manager's engine; empty: DOCKER_HOST
#   tls {
#     ca_file   = "certs/ca.pem"
#     cert_file = "certs/cert.pem"
#     key_file  = "certs/key.pem"
#   }
#   publish_mode = "host" # or "ingress" (the routing mesh; needs IPVS)
#   # Engines older than Docker 27 cannot set no-new-privileges per
#   # service: say that every node's dockerd runs with --no-new-privileges.
#   engine_no_new_privileges = true
#   volume_driver     = ""    # driver of named volumes; "" is each node's local
#   stop_grace_period = "10s" # SIGTERM to SIGKILL, fixed when a service is created
#   poll_interval     = "500ms" # how often task states are read
# }
