# A configuration that sets everything.
listen          = "0.0.0.0:8080"
deployment_name = "test-1"
data_dir        = "data"
plugin_dir      = "/opt/zoe/plugins"
log_level       = "debug"
shop_dir        = "shop"

tls {
  cert_file = "tls/cert.pem"
  key_file  = "/etc/zoe/key.pem"
}

state {
  postgres = env("ZOE_TEST_PG_DSN")
}

scheduler {
  policy    = "DYNSIZE"
  placement = "waterfill"
  backfill  = true
}

limits {
  max_service_cores  = 2.5
  max_service_memory = "1.5GiB"
}

auth "ldap" {
  checksum      = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  start_timeout = "1m"
  server_uri    = "ldaps://ldap.example.org"
  bind_password = env("ZOE_TEST_UNSET_PASSWORD", "secret")
}

auth "file" {
  binary     = "bin/zoe-auth-file"
  users_file = "users.csv"
}

workspace "dir" {
  base_path = upper("ws")
}

backend "docker" {}

service_logs {
  max_file_size = "1MiB"
  max_files     = 5
}

containers {
  run_as                     = "1000:100"
  allow_root                 = true
  allow_privilege_escalation = true
  keep_capabilities          = true
  images                     = ["zoe/*", "registry.example.org/lab/*"]
  pids_limit                 = 4096

  host_path "/srv/datasets/" {
  }
  host_path "/srv/scratch" {
    read_only = false
    roles     = ["admin", "user"]
  }
}
