package sdk

import "github.com/hashicorp/go-plugin"

// ProtocolVersion is the go-plugin protocol version of Zoe's plugins. It
// changes only when the wire breaks; the kinds' own APIVersion constants are
// how the contracts evolve within it.
const ProtocolVersion = 1

// Handshake is what the core and a plugin check before they talk. The cookie
// only tells a person who runs a plugin binary by hand that it is not a
// program to run by itself.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "ZOE_PLUGIN_MAGIC_COOKIE",
		MagicCookieValue: "7a6f652d706c7567696e2d6b696e64732d6261636b656e642d617574682d77",
	}
}

// LogLevelEnv is the environment variable through which the core tells a
// plugin its log level.
const LogLevelEnv = "ZOE_PLUGIN_LOG_LEVEL"
