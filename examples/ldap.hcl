# Zoe with its users in an LDAP directory (plugins/auth-ldap/README.md),
# and a users file beside it for local service accounts. Relative paths
# resolve against this file's directory. The directory's address, CA and
# service password come from the environment, so that this file holds no
# secret and fits any site:
#
#   export ZOE_LDAP_URL=ldaps://ldap.example.org      # several: edit urls below
#   export ZOE_LDAP_CA_FILE=/etc/zoe/ldap-ca.pem      # the CA of the servers' certificates
#   export ZOE_LDAP_PASSWORD='...'                    # cn=zoe,ou=services's password
#   make build
#   bin/zoe users-file init --if-missing .zoe/ldap-users.csv   # the local admin, printed once
#   bin/zoe config validate examples/ldap.hcl
#   bin/zoe server -config examples/ldap.hcl
#
# Add a backend block as in examples/zoe.hcl to run ZApps; without one the
# daemon serves the API alone.

listen          = env("ZOE_LISTEN", "127.0.0.1:5003")
deployment_name = "ldap"
data_dir        = "../.zoe/ldap-data"

# Tried first: users of the directory. A user the directory does not know,
# or whose password it refuses, is tried against the next block.
auth "ldap" {
  urls    = [env("ZOE_LDAP_URL")]
  ca_file = env("ZOE_LDAP_CA_FILE")

  # A service account finds users (and their groups) by login name; each
  # user's password is then checked by a bind as the user's entry.
  bind_dn         = "cn=zoe,ou=services,dc=zoe,dc=test"
  bind_password   = env("ZOE_LDAP_PASSWORD")
  user_base       = "ou=people,dc=zoe,dc=test"
  user_filter     = "(&(objectClass=posixAccount)(uid=%s))"
  group_base      = "ou=groups,dc=zoe,dc=test"
  disabled_filter = "(loginShell=/usr/sbin/nologin)"

  # First match wins: the primary group's gidNumber, or a group's cn or DN.
  role {
    gid_number = 5000
    role       = "admin"
  }
  role {
    group = "zoe-admins"
    role  = "admin"
  }
  role {
    group = "zoe-users"
    role  = "user"
  }
  # Everybody else in the directory: guest. Without default_role they
  # could not log in at all.
  default_role = "guest"
}

# Tried second: local accounts (a break-glass admin, robots) that must work
# while the directory is down. Give them names the directory does not use.
auth "file" {
  users_file = "../.zoe/ldap-users.csv"
}

workspace "dir" {
  base_path = "../.zoe/ldap-workspaces"
}
